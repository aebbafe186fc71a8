// Package sweep fans many jobs out over a banfleet fleet and gathers their results as
// they finish: the caller's side of a parameter sweep.
//
// A sweep submits through a dispatch.Submitter, a *dispatch.Master in-process or a
// *dispatch.Client of a remote master, with a bound on the jobs in flight
// (Options.MaxInFlight) so that a million jobs do not flood the master's queue; it
// waits and submits again while the master's queue is full. Results arrive on
// Sweep.Results in the order the jobs finish; Sweep.Progress reports the rate and the
// time left; Sweep.Stop, the context or (Options.StopOnError) the first failure end it
// early.
//
// With Options.Journal set, every finished result is appended to a file, and a sweep
// started again with the same journal and the same jobs replays those results instead
// of running the jobs again. The journal's first line identifies the sweep (a hash of
// its jobs' ids, types and payloads, and Options.Description): a journal written by
// another sweep, over other data or another grid, is refused with ErrJournalMismatch
// rather than mixed in. The file is JSON lines, one result a line, with results kept
// as text where they are JSON or UTF-8, so it can be read with grep and jq.
//
// docs/dispatch.md ("Sweeps") describes the journal's format.
package sweep
