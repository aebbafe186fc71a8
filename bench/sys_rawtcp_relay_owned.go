package main

// rawtcp-relay-owned-w4 is rawtcp-relay-w4 doing the job dispatch-w4 does, with nothing
// of banfleet in it: the floor of a broker hop whose parties own what they receive.
// dispatch's master keeps each job's payload until the job resolves (it may run it
// again), its workers run handlers that own their job's payload on goroutines of their
// own, and its Client hands each caller a result it owns. The stateless relay does none
// of that. Here the relay reads each request into memory of its own and keeps it, by
// id, until its answer passes (the answer itself is forwarded from the reused read
// buffer, as dispatch's master forwards a worker's reply); each worker is
// rawtcp-mux-owned's server (a fresh allocation per request, answered from a handler
// goroutine); the client reads each reply into memory of its own. The gap between
// rawtcp-relay-w4 and this is the price of the contract, the gap between this and
// dispatch-w4 is banfleet's.
func newRawRelayOwned(workers int) *rawRelay { return &rawRelay{workers: workers, owned: true} }
