package dispatch

// workerHeap is a class's routable workers as a binary min-heap in routing order (see
// routesBefore): its top is the worker the next job of the class's types should go
// to. Each worker keeps its index in workerState.heapAt (-1 when in no heap), so a
// change of its load is an O(log n) fix. Guarded by Master.mu, like the workers' loads
// it orders by.
type workerHeap []*workerState

// routesBefore reports whether a job should rather go to a than to b: the less loaded
// one (in-flight / capacity), and between equally loaded ones the one picked longest
// ago, which makes idle workers take turns.
func routesBefore(a, b *workerState) bool {
	// Compare loads as fractions without floats: a/b < c/d ⇔ a·d < c·b.
	la, lb := a.inflight*b.info.Capacity, b.inflight*a.info.Capacity
	if la != lb {
		return la < lb
	}
	return a.lastPick < b.lastPick
}

// top returns the first worker in routing order, dropping those whose connection has
// closed (forgetWorker, about to run, finds them out of the heap); nil if none is left.
func (h *workerHeap) top() *workerState {
	for len(*h) > 0 {
		w := (*h)[0]
		if !w.conn.IsClosed() {
			return w
		}
		h.remove(0)
	}
	return nil
}

func (h *workerHeap) push(w *workerState) {
	w.heapAt = len(*h)
	*h = append(*h, w)
	h.up(w.heapAt)
}

// remove takes out the worker at index i.
func (h *workerHeap) remove(i int) {
	s := *h
	last := len(s) - 1
	w := s[i]
	if i != last {
		h.swap(i, last)
	}
	s[last] = nil
	*h = s[:last]
	w.heapAt = -1
	if i != last {
		h.fix(i)
	}
}

// fix restores the order after the worker at index i changed its load or turn.
func (h *workerHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h workerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapAt, h[j].heapAt = i, j
}

func (h workerHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !routesBefore(h[i], h[parent]) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

// down sifts the worker at i towards the leaves; false if it did not move.
func (h workerHeap) down(i int) bool {
	start := i
	for {
		first := 2*i + 1
		if first >= len(h) {
			break
		}
		if second := first + 1; second < len(h) && routesBefore(h[second], h[first]) {
			first = second
		}
		if !routesBefore(h[first], h[i]) {
			break
		}
		h.swap(i, first)
		i = first
	}
	return i > start
}
