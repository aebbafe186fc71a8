// Package daemon is the command-line plumbing shared by banfleet's programs
// (cmd/master, cmd/worker, the backtest example, and a user's own worker or master
// built with packages daemon/workerd and daemon/masterd): flags that fall back to
// BANFLEET_* environment variables, the transport's security and heartbeat
// settings, logging, metrics and OpenTelemetry trace export.
//
// Every flag -some-name can also be set with the environment variable
// BANFLEET_SOME_NAME; a flag given on the command line wins over the
// environment, which wins over the default.
//
// It imports neither dispatch nor worker, so a worker binary that uses it links
// no master code, and a master links no worker code.
package daemon
