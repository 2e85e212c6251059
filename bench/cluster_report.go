package bench

// ClusterReport is what one [RunCluster] measured. Every cluster figure
// has the single node's beside it, from the same run on the same machine.
type ClusterReport struct {
	Users        int    `json:"users"`
	FacesPerUser int    `json:"faces_per_user"`
	Dim          int    `json:"dim"`
	Machine      string `json:"machine"`
	// LoadAvg is /proc/loadavg's 1-minute figure at the start and the end.
	LoadAvg  [2]float64 `json:"load_avg"`
	ElapsedS float64    `json:"elapsed_s"`

	// IndexFacesPerS is IndexFaces, one face per call from IndexCallers
	// callers: spread over the three nodes (each call a command through
	// the replicated log, acknowledged by a quorum with fsync and applied
	// by the answering node), and on the single node.
	IndexFacesPerS RateComparison `json:"index_faces_per_s"`
	// Search times SearchUsers by UserId (MaxUsers 10, threshold 0) on
	// node 1 and on the single node, at concurrency 1 and Concurrency.
	Search []SearchComparison `json:"search"`
	// WriteToVisible times a write on one node until another node shows it.
	WriteToVisible VisibleTiming `json:"write_to_visible"`
}

// RateComparison is a rate on both sides: the single node and the cluster.
type RateComparison struct {
	Single  float64 `json:"single"`
	Cluster float64 `json:"cluster"`
	// Ratio is Cluster / Single.
	Ratio float64 `json:"ratio"`
}

// SearchComparison is SearchUsers at one concurrency: on the single node,
// and on a cluster node with linearizable reads (each waits for a shared
// read barrier through the log) and with local ones.
type SearchComparison struct {
	Concurrency  int          `json:"concurrency"`
	Single       SearchTiming `json:"single"`
	Linearizable SearchTiming `json:"linearizable"`
	Local        SearchTiming `json:"local"`
	// LinearizableP50Ratio and LocalP50Ratio are the p50s over the single
	// node's.
	LinearizableP50Ratio float64 `json:"linearizable_p50_ratio"`
	LocalP50Ratio        float64 `json:"local_p50_ratio"`
	// BarriersPerRead is the log entries the linearizable reads added, per
	// read: 1 with no sharing, less as concurrent reads share barriers.
	BarriersPerRead float64 `json:"barriers_per_read"`
}

// SearchTiming is one side's searches: latency percentiles over every
// call, the calls made and their rate.
type SearchTiming struct {
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	Searches int     `json:"searches"`
	QPS      float64 `json:"qps"`
}

// VisibleTiming is a CreateUser on node A while node B polls its local
// state (local consistency) for it, both timed from the start of the
// write; a single node's write is visible once it returns.
type VisibleTiming struct {
	// WriteP50Ms is the write's own latency on node A.
	WriteP50Ms float64 `json:"write_p50_ms"`
	// VisibleP50Ms and VisibleP99Ms are until node B shows the write.
	VisibleP50Ms float64 `json:"visible_p50_ms"`
	VisibleP99Ms float64 `json:"visible_p99_ms"`
	// SingleWriteP50Ms is the same write on the single node.
	SingleWriteP50Ms float64 `json:"single_write_p50_ms"`
	// VisibleRatio is VisibleP50Ms / SingleWriteP50Ms.
	VisibleRatio float64 `json:"visible_ratio"`
}

// fill computes the ratios.
func (r *ClusterReport) fill() {
	r.IndexFacesPerS.Ratio = ratio(r.IndexFacesPerS.Cluster, r.IndexFacesPerS.Single)
	for i := range r.Search {
		s := &r.Search[i]
		s.LinearizableP50Ratio = ratio(s.Linearizable.P50Ms, s.Single.P50Ms)
		s.LocalP50Ratio = ratio(s.Local.P50Ms, s.Single.P50Ms)
	}
	v := &r.WriteToVisible
	v.VisibleRatio = ratio(v.VisibleP50Ms, v.SingleWriteP50Ms)
}

// ratio is a / b, 0 when b is.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
