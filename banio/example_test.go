package banio_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/banfleet/banfleet/banio"
)

// startServer serves srv on a free loopback port and returns its address.
func startServer(srv *banio.ServerIO) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)
	return ln.Addr().String()
}

// A round trip: the client registers a wait, sends a request that names it, and the
// server's handler answers it with SendWaitRes.
func ExampleNewBanServer() {
	srv := banio.NewBanServer("127.0.0.1:0", "example")
	srv.InitConn = func(c *banio.BanConn) {
		c.Listen("greet", func(m *banio.IOMsgRaw) {
			// By convention here the request's Data is the wait key to answer.
			_ = c.SendWaitRes(string(m.Data), "hello from "+srv.Name)
		})
	}
	addr := startServer(srv)
	defer srv.Close()

	client, err := banio.NewClientIO(addr)
	if err != nil {
		panic(err)
	}
	go client.RunForever()
	defer client.Close()

	key := client.SetWait("", 1)
	if err := client.WriteMsg(&banio.IOMsg{Action: "greet", Data: key}); err != nil {
		panic(err)
	}
	reply, err := client.WaitResult(context.Background(), key, 5*time.Second)
	fmt.Println(string(reply), err)
	// Output: hello from example <nil>
}

// Broadcast reaches the connections subscribed to exactly its action, in order.
func ExampleServerIO_Broadcast() {
	srv := banio.NewBanServer("127.0.0.1:0", "example")
	addr := startServer(srv)
	defer srv.Close()

	client, err := banio.NewClientIO(addr)
	if err != nil {
		panic(err)
	}
	go client.RunForever()
	defer client.Close()

	got := make(chan string)
	client.Listen("ticks", func(m *banio.IOMsgRaw) { got <- string(m.Data) })
	if err := client.Subscribe("ticks"); err != nil {
		panic(err)
	}
	// The server handles one connection's messages in order, so once this GetVal is
	// answered the subscription is in place.
	if _, err := client.GetVal("anything", 5); err != nil {
		panic(err)
	}
	for _, price := range []float64{101.5, 101.75} {
		_ = srv.Broadcast(&banio.IOMsg{Action: "ticks", Data: map[string]float64{"BTC": price}})
	}
	_ = srv.Broadcast(&banio.IOMsg{Action: "ticks-other", Data: "not subscribed"})
	fmt.Println(<-got)
	fmt.Println(<-got)
	// Output:
	// {"BTC":101.5}
	// {"BTC":101.75}
}

// Lock takes a server-wide lock with a TTL; the server grants it atomically, so the
// read-modify-write below cannot interleave with another holder's.
func ExampleClientIO_Lock() {
	srv := banio.NewBanServer("127.0.0.1:0", "example")
	addr := startServer(srv)
	defer srv.Close()
	srv.SetVal(&banio.KeyValExpire{Key: "jobs", Val: "41"})

	client, err := banio.NewClientIO(addr)
	if err != nil {
		panic(err)
	}
	go client.RunForever()
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	token, err := client.Lock(ctx, "jobs", 10*time.Second)
	if err != nil {
		panic(err)
	}
	v, _ := client.GetVal("jobs", 5)
	var n int
	fmt.Sscan(v, &n)
	_ = client.SetVal(&banio.KeyValExpire{Key: "jobs", Val: fmt.Sprint(n + 1)})
	fmt.Println(client.Unlock("jobs", token))
	fmt.Println(client.Unlock("jobs", token))
	v, _ = client.GetVal("jobs", 5)
	fmt.Println(v)
	// Output:
	// <nil>
	// banio: Unlock "jobs": banio: lock not held by this token
	// 42
}
