// Package btjob is the "backtest" job type shared by the backtest example and its
// worker daemon (examples/backtest/cmd/btworker): its payload, its handler, and the
// sweep's job list.
//
// A sweep stores the encoded bars once as a blob on the master
// (dispatch.Master.PutBlob or dispatch.Client.PutBlob); each job carries only
// the blob's hash and one parameter set. A worker downloads the blob the first
// time one of its jobs asks for it (worker.Job.Blob caches it per worker) and
// the handler keeps the decoded bars per hash, so ten thousand jobs cost one
// download and one decode per worker.
package btjob
