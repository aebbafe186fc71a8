// Package fleetcli is the command-line plumbing shared by banfleet's programs
// (cmd/master, cmd/worker and the backtest example): flags that fall back to
// BANFLEET_* environment variables, the transport's security and heartbeat
// settings, logging, and OpenTelemetry trace export.
//
// Every flag -some-name can also be set with the environment variable
// BANFLEET_SOME_NAME; a flag given on the command line wins over the
// environment, which wins over the default.
package fleetcli
