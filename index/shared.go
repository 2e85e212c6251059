package index

import (
	"context"
	"errors"
	"slices"
	"sync"
)

const (
	// maxShared caps the queries of one shared pass: as SearchBatch's
	// (maxBatch), since a pass of fewer queries than that is bound by the
	// read of the matrix, so that many callers waiting at once would get
	// fewer searches per second in smaller passes. A caller waits for at
	// most the pass running when it arrived and its own.
	maxShared = maxBatch
	// shareMinFloats is the smallest matrix (rows x dim) whose searches
	// SearchShared coalesces: below it a scan is a few microseconds from
	// cache and concurrent scans are better run side by side.
	shareMinFloats = 1 << 18
)

// coalescer batches concurrent searches as a group commit batches writes:
// a search that arrives while no pass runs starts one at once, alone;
// searches that arrive while a pass runs queue, and when it ends, one of
// them leads the next pass, for all of them. Nobody sleeps to wait for
// company: under load, batches form by themselves from what queued during
// the previous pass.
//
// What forms by itself is not always one batch: the callers a pass
// answers come back together, and the first back finds no pass running
// and scans alone while the rest queue behind it, or they come back
// during a pass that others started and wait for it; either way the same
// callers take two passes where a batch of them takes one. So a pass that
// starts with fewer queries than the callers around (those the last pass
// answered and those that were queued then) starts at once but gives way
// (join) as soon as the rest have queued: it stops at its next chunk and
// its leader starts one pass for all of them. If they do not come, the
// pass runs to its end as ever; a leader gives way at most once.
type coalescer struct {
	mu      sync.Mutex
	running bool // a pass is running, or a leader was named to start one
	queue   []*request
	// around is the callers the last leader to end answered (in its last
	// pass or in one that gave way), plus those queued as it ended.
	around int
	// join, while a pass runs that others may join, stops it once the
	// queue holds expect requests.
	join   func()
	expect int
}

// A request's state, guarded by coalescer.mu.
const (
	reqQueued = iota // in coalescer.queue
	reqLeader        // named to lead the next pass
	reqMember        // taken into a pass another request leads
)

// request is one caller of SearchShared.
type request struct {
	query
	state int
	// wake is signalled once: when the request is named leader, or when
	// its pass is over and query.hits/err are set.
	wake chan struct{}
}

// SearchShared is [Matrix.Search] for callers that may arrive together:
// searches that arrive while a pass over the matrix is running wait for it
// to end and then share the next pass, which scores several queries per
// row loaded (the batched kernel, as [Matrix.SearchBatch]), so concurrent
// searches cost little more memory traffic than one. The results are exactly those of
// Search: the same hits, scores and order.
//
// The matrix must not change until every SearchShared call in flight has
// returned; the engine holds its read lock across the call, so a pass
// never sees a writer. A caller whose ctx is done returns ctx.Err() without
// disturbing the others: a pass is abandoned only when every query in it
// is cancelled.
func (m *Matrix) SearchShared(ctx context.Context, q []float32, k int, minScore float32) ([]Hit, error) {
	return m.SearchSharedAs(ctx, q, k, minScore, nil)
}

// SearchSharedAs is [Matrix.SearchShared] for rows that stand for other
// keys: each row ranks, and its hit is reported, under key(its key) (its
// own key when key is nil). The hits are then exactly the best k of a
// matrix keyed that way: score descending, ties by the new keys ascending,
// whichever rows share the k-th score. key must give distinct rows
// distinct keys and must not change the matrix; it is called on the
// scan's goroutines, for rows whose scores tie in a heap and, as each
// worker ends, for the rows its heap kept.
func (m *Matrix) SearchSharedAs(ctx context.Context, q []float32, k int, minScore float32, key func(uint64) uint64) ([]Hit, error) {
	if len(m.keys)*m.dim < m.shareMin {
		return m.searchAs(ctx, q, k, minScore, key, m.workers())
	}
	if ok, err := m.check(q, k); !ok {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.stats.searches.Add(1)
	r := &request{query: query{vec: q, k: k, minScore: minScore, ctx: ctx, key: key}}
	co := &m.shared
	co.mu.Lock()
	if !co.running {
		co.running = true
		co.mu.Unlock()
		return m.lead(r)
	}
	// The query is copied: a cancelled caller returns at once, and its
	// slice must not be read by a pass after that.
	r.vec = slices.Clone(q)
	r.wake = make(chan struct{}, 1)
	r.state = reqQueued
	co.queue = append(co.queue, r)
	if co.join != nil && len(co.queue) >= co.expect {
		co.join()
		co.join = nil
	}
	co.mu.Unlock()

	select {
	case <-r.wake:
	case <-ctx.Done():
		co.mu.Lock()
		switch r.state {
		case reqQueued:
			i := slices.Index(co.queue, r)
			co.queue = slices.Delete(co.queue, i, i+1)
			co.mu.Unlock()
			return nil, ctx.Err()
		case reqMember:
			co.mu.Unlock()
			return nil, ctx.Err() // the pass goes on for the others
		}
		co.mu.Unlock()
		<-r.wake // named leader: the queue depends on this caller
	}
	if r.state == reqLeader {
		return m.lead(r)
	}
	return r.hits, r.err
}

// lead runs one pass for r and whatever queued, then hands the lead to the
// first request that queued meanwhile, or marks the coalescer idle.
func (m *Matrix) lead(r *request) ([]Hit, error) {
	co := &m.shared
	var members []*request
	answered := 0 // members answered by passes that gave way
	ended := false
	defer func() {
		// Deferred so that a panic in the pass cannot leave the queue
		// waiting forever for a leader, nor its members with no answer
		// and no error.
		for _, x := range members {
			if !ended {
				x.hits, x.err = nil, ErrPassFailed
			}
			x.wake <- struct{}{}
		}
		co.mu.Lock()
		co.join = nil // a pass that panicked may have left it set
		co.around = 1 + answered + len(members) + len(co.queue)
		if len(co.queue) == 0 {
			co.running = false
		} else {
			next := co.queue[0]
			co.queue = co.queue[1:]
			next.state = reqLeader
			next.wake <- struct{}{}
		}
		co.mu.Unlock()
	}()
	for mayJoin := true; ; mayJoin = false {
		n, again := m.passShared(r, mayJoin, &members)
		answered += n
		if !again {
			ended = true
			return r.hits, r.err
		}
	}
}

// errGaveWay is the cause with which a pass that gives way (see coalescer)
// cancels its queries' contexts.
var errGaveWay = errors.New("index: the pass gave way to a larger one")

// passShared runs one pass for r and up to maxShared-1 queued requests.
// *live holds the members lead's hand-off is to wake, from the moment
// they leave the queue, so that they are woken even if the pass panics.
// With mayJoin, a pass with fewer queries than the callers around gives
// way to a larger one once they have queued (see coalescer): its requests
// left unanswered go back to the head of the queue, the others are woken
// (and *live emptied) and counted in answered, and it reports again when r
// is one of the former, which then leads again.
func (m *Matrix) passShared(r *request, mayJoin bool, live *[]*request) (answered int, again bool) {
	co := &m.shared
	co.mu.Lock()
	n := min(len(co.queue), maxShared-1)
	members := slices.Clone(co.queue[:n])
	co.queue = slices.Delete(co.queue, 0, n)
	*live = members
	for _, x := range members {
		x.state = reqMember
	}
	qs := make([]*query, 0, 1+len(members))
	qs = append(qs, &r.query)
	for _, x := range members {
		qs = append(qs, &x.query)
	}
	// While a pass may give way, its queries run on contexts that join
	// cancels; own keeps the callers'. Past maxShared callers the rest
	// could not join it anyway.
	var own []context.Context
	var joined bool
	if rest := co.around - len(qs); mayJoin && rest > 0 && co.around <= maxShared {
		own = make([]context.Context, len(qs))
		cancels := make([]context.CancelCauseFunc, len(qs))
		for i, q := range qs {
			own[i] = q.ctx
			q.ctx, cancels[i] = context.WithCancelCause(q.ctx)
		}
		co.expect = rest
		co.join = func() {
			joined = true
			for _, cancel := range cancels {
				cancel(errGaveWay)
			}
		}
		defer func() {
			for _, cancel := range cancels {
				cancel(nil) // releases the contexts
			}
		}()
	}
	co.mu.Unlock()

	// Shared counts a pass's searches but those it leaves to the next.
	countShared := func(redone int) {
		if len(qs) > 1 {
			m.stats.shared.Add(uint64(len(qs) - redone))
		}
	}
	if m.passHook != nil {
		m.passHook(qs)
	}
	m.passMany(qs, m.workers())
	if own == nil {
		countShared(0)
		return 0, false
	}

	co.mu.Lock()
	defer co.mu.Unlock()
	co.join = nil
	for i, q := range qs {
		q.ctx = own[i]
		if q.err != nil && (q.ctx.Err() != nil || !joined) {
			q.err = q.ctx.Err() // the caller's own error, not the pass's
		}
	}
	if !joined {
		countShared(0)
		return 0, false
	}
	// Stopped: the queries it left unanswered go round again, at the head
	// of the queue; the rest have their answers (or their own errors), and
	// those answered come back as the callers of any pass do.
	var redo []*request
	redone := 0
	for i, q := range qs {
		unanswered := q.err != nil && q.ctx.Err() == nil
		if unanswered {
			q.err = nil
			redone++
		}
		switch {
		case i == 0:
			again = unanswered
		case unanswered:
			x := members[i-1]
			x.state = reqQueued
			redo = append(redo, x)
		default:
			members[i-1].wake <- struct{}{}
			if q.err == nil {
				answered++
			}
		}
	}
	co.queue = slices.Insert(co.queue, 0, redo...)
	*live = nil
	countShared(redone)
	return answered, again
}
