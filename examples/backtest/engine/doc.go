// Package engine is the pure, deterministic backtest engine behind the
// banfleet backtest example: it loads or synthesises OHLCV bars, runs a
// moving-average crossover strategy over them, scores each parameter set,
// ranks the results and renders them as a table, an HTML report and a
// progress line.
//
// # Determinism
//
// The example compares results computed in-process with results computed
// on remote workers for exact equality, so every function here returns
// bit-identical output for identical input on any run, any machine and any
// goroutine schedule. Three rules make that hold:
//
//   - No global state: every call owns its data; nothing is cached between
//     calls, so concurrent calls cannot influence each other.
//   - No fused multiply-add: the Go specification lets a compiler fuse
//     x*y + z into one FMA instruction (arm64, ppc64, s390x and amd64 with
//     GOAMD64=v3 do), which changes the last bit. Every product that feeds
//     an addition is wrapped in an explicit float64(...) conversion, which
//     the specification says forbids fusion.
//   - No platform-dependent transcendental functions: math.Exp and math.Log
//     use assembly whose result depends on the CPU (amd64 picks an FMA path
//     at run time), so CAGR uses the pure-Go ports in detmath.go. math.Sqrt
//     is correctly rounded by IEEE 754 and therefore safe.
//
// TestGoldenHashes pins the exact output bits; it passes with GOAMD64=v1
// and v3 and on arm64, ppc64le, s390x and riscv64 (run under qemu). To
// check that no fusion slipped in after an edit, this must print nothing:
//
//	GOAMD64=v3 go build -gcflags=-S ./examples/backtest/engine 2>&1 | grep VFMADD
//
// Results survive a JSON round trip unchanged (encoding/json writes the
// shortest representation that parses back to the same float64), so they
// can be shipped between master and workers as JSON.
package engine
