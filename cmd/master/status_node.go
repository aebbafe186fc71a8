package main

import (
	"github.com/banfleet/banfleet/cluster"
	"github.com/banfleet/banfleet/dispatch"
)

// nodeFleet is the status server's view of a cluster member (-cluster): its master's
// while it leads, an empty fleet otherwise.
type nodeFleet struct{ node *cluster.Node }

func (f nodeFleet) Snapshot() dispatch.Snapshot {
	if m := f.node.Master(); m != nil {
		return m.Snapshot()
	}
	return dispatch.Snapshot{}
}

func (f nodeFleet) LookupJob(id string) (dispatch.JobView, bool) {
	if m := f.node.Master(); m != nil {
		return m.LookupJob(id)
	}
	return dispatch.JobView{}, false
}
