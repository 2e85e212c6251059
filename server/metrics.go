package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/facesearch/facesearch/engine"
)

// metrics are the server's Prometheus metrics, on a registry of its own so
// two servers in one process (tests) do not collide.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry, e Backend) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "facesearch",
			Name:      "requests_total",
			Help:      "API requests by operation and result code (OK or the error code).",
		}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "facesearch",
			Name:      "request_duration_seconds",
			Help:      "API request latency by operation.",
			Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"operation"}),
	}
	reg.MustRegister(m.requests, m.duration, &collectionCollector{engine: e},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// MetricsHandler serves GET /metrics and GET /healthz and nothing else,
// never asking for a signature: Prometheus cannot sign requests. It is
// meant for a listener of its own (facesearch serve --listen-metrics), on
// an address only the scrapers reach, as the metrics name every
// collection. An [http.Server] from [Server.HTTPServer] with this as its
// Handler serves it with the same limits.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.promh) // GET patterns match HEAD too
	mux.HandleFunc("GET /healthz", s.healthz)
	return mux
}

func (m *metrics) observe(op, code string, d time.Duration) {
	m.requests.WithLabelValues(op, code).Inc()
	m.duration.WithLabelValues(op).Observe(d.Seconds())
}

var (
	facesDesc = prometheus.NewDesc("facesearch_collection_faces",
		"Faces in a collection.", []string{"collection"}, nil)
	usersDesc = prometheus.NewDesc("facesearch_collection_users",
		"Users in a collection.", []string{"collection"}, nil)
)

// collectionCollector reads faces and users per collection from the engine
// at scrape time, so the numbers are the engine's own and need no upkeep on
// every write. A replicated backend's local engine is read (see
// localReader): a scrape needs no read barrier.
type collectionCollector struct{ engine Backend }

var _ prometheus.Collector = (*collectionCollector)(nil)

func (c *collectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- facesDesc
	ch <- usersDesc
}

func (c *collectionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var e Backend = c.engine
	if l, ok := e.(localReader); ok {
		e = l.LocalEngine()
	}
	in := &engine.ListCollectionsInput{}
	for {
		page, err := e.ListCollections(ctx, in)
		if err != nil {
			return // closed engine: no collection gauges, the rest still scrapes
		}
		for _, id := range page.CollectionIds {
			d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: id})
			if err != nil {
				continue // deleted since the listing
			}
			ch <- prometheus.MustNewConstMetric(facesDesc, prometheus.GaugeValue, float64(d.FaceCount), id)
			ch <- prometheus.MustNewConstMetric(usersDesc, prometheus.GaugeValue, float64(d.UserCount), id)
		}
		if page.NextToken == "" {
			return
		}
		in.NextToken = page.NextToken
	}
}
