// Package fleettest runs a real banfleet fleet inside a test, as net/http/httptest runs
// a real HTTP server: a dispatch.Master on a banio server on 127.0.0.1 (a free port)
// and workers with the test's handlers, over loopback TCP, all closed by t.Cleanup.
//
//	f := fleettest.New(t, map[string]worker.Handler{"upper": upper}, fleettest.WithWorkers(2))
//	res, err := f.Master().Call(ctx, "upper", "abc")   // in-process
//	c := f.Client()                                      // or from a remote caller
//	res, err = c.Call(ctx, "upper", "abc")
//
// New returns once every worker has registered. Faults are one call each: cut a
// worker's connection (Worker.Cut) or keep it cut (Worker.Partition), kill a worker
// and start it again (Worker.Kill, Worker.Restart), drain it (Worker.Stop), restart
// the master on the same port and store (Fleet.RestartMaster), which workers and
// Clients ride through. Each worker and each LinkedClient reaches the master through a
// Link of its own, so that a cut hits one peer only; Fleet.Link is a TCP proxy for a
// peer the test connects itself.
//
// The parts are tuned for tests, not for production: heartbeats every 50 ms with a
// 400 ms timeout, reconnects within 5 to 50 ms, a 1 to 10 ms retry backoff on the
// master, a 2 s drain grace on the workers. Options given to New pass on to the master,
// the workers and the Clients and win over these defaults, except the reconnect
// policy of the workers and the dialer of the workers and LinkedClients, which Kill
// and the Links work through.
//
// Every wait a fleettest call makes is bounded (WithTimeout, default 10 s) and fails
// the test when it runs out, and nothing outlives the test: Close (run by t.Cleanup)
// stops the Clients, the workers, the master and the proxies and waits for them.
package fleettest
