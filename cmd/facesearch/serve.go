package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/server"
)

const serveExamples = `  facesearch serve                                   # 127.0.0.1:8080, store in ./data
  facesearch serve --listen 127.0.0.1:9000 --data /var/lib/facesearch
  facesearch serve --listen 0.0.0.0:8080 --credentials /etc/facesearch/credentials --region eu-west-1
  facesearch serve --listen 0.0.0.0:8080 --credentials creds --listen-metrics 127.0.0.1:9464   # Prometheus scrapes here, unsigned
  facesearch serve --data /var/lib/facesearch --node-name fs1 --nats-listen 10.0.0.1:4222 --nats-cluster-listen 10.0.0.1:6222 \
      --nats-routes nats-route://10.0.0.1:6222,nats-route://10.0.0.2:6222,nats-route://10.0.0.3:6222 ...   # a node of a 3-node cluster, NATS embedded
  facesearch serve --node-name fs1 --nats nats://10.0.0.5:4222,nats://10.0.0.6:4222 ...                    # a node on an external NATS cluster`

// serve runs the Rekognition-compatible HTTP server until ctx is cancelled
// (SIGINT or SIGTERM), then lets requests in flight finish and closes the
// store.
func (m *Main) serve(ctx context.Context, args []string) error {
	fs := m.newFlagSet("serve", "[--listen ADDR] [--data DIR] [--credentials FILE [--region REGION]] [--listen-metrics ADDR] "+
		"[--nats URL,... | --nats-listen ADDR --nats-cluster-listen ADDR --nats-routes URL,...] [--node-name NAME] [--read-consistency linearizable|local] [--checkpoint-every N] [--checkpoint-interval D]", serveExamples)
	listen := fs.String("listen", "127.0.0.1:8080", "`address` to listen on; without --credentials it must be a loopback address")
	dir := fs.String("data", "./data", "store `directory`, created if missing")
	credsPath := fs.String("credentials", "", "AWS shared-credentials `file`; when set, every request must be SigV4-signed by one of its key pairs")
	region := fs.String("region", "", "the only `region` a signature's credential scope may name (default: any)")
	listenMetrics := fs.String("listen-metrics", "", "also serve GET /metrics and /healthz, unsigned, on this `address` (a loopback or private one: the metrics name every collection); "+
		"with --credentials the default is "+defaultMetricsAddr+", without it none (the API listener serves /metrics unsigned); \"off\" turns it off")
	timeout := fs.Duration("request-timeout", 30*time.Second, "longest one request may run")
	maxInFlight := fs.Int("max-concurrent-requests", 256, "requests served at once; more are refused with ThrottlingException")
	logFormat := fs.String("log-format", "text", "request log format: text or json")
	accountID := fs.String("account-id", "000000000000", "12-digit AWS account `ID` in collection ARNs (their region is each request's SigV4 scope region)")
	var minFree freeSpaceFlag
	fs.Var(&minFree, "min-free-space", "writes are refused with ThrottlingException (retried by SDKs) while the store's disk has less free space than `size`, "+
		"such as 512MiB or 2GiB; 0 turns the floor off (default 5% of the disk, at least 256MiB and at most 20GiB)")
	salvage := fs.Bool("salvage", false, "open a store whose write-ahead log is damaged by dropping the records from the damage on, "+
		"after saving the logs in the store's salvaged/ directory; the log says what was dropped")
	cf := addClusterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf(fs, "unexpected argument %q", fs.Arg(0))
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return usageErrorf(fs, "--listen %q is not host:port: %v", *listen, err)
	}
	cc, err := cf.config(*listen)
	if err != nil {
		return usageErrorf(fs, "%v", err)
	}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(m.Stderr, nil)
	case "json":
		handler = slog.NewJSONHandler(m.Stderr, nil)
	default:
		return usageErrorf(fs, "--log-format must be text or json, not %q", *logFormat)
	}
	log := slog.New(handler)

	if *region != "" && *credsPath == "" {
		return usageErrorf(fs, "--region pins the region of signatures; it needs --credentials")
	}
	var creds map[string]string
	if *credsPath != "" {
		if creds, err = server.LoadCredentials(*credsPath); err != nil {
			return fmt.Errorf("--credentials: %w", err)
		}
	} else if !isLoopbackHost(host) {
		return usageErrorf(fs, "refusing to listen on %s without --credentials: anyone who can reach it could read and change every collection; "+
			"listen on 127.0.0.1 or pass --credentials FILE", *listen)
	}

	eopts := &engine.Options{AccountID: *accountID, MinFreeBytes: minFree.bytes, Salvage: *salvage}
	if err := eopts.Validate(); err != nil {
		return usageErrorf(fs, "--account-id %q is not 12 digits", *accountID)
	}

	// Listen before the store is touched, so a busy port leaves --data as
	// it was (not even created).
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && creds == nil && !tcp.IP.IsLoopback() {
		// A name like "localhost" may resolve to something else.
		return fmt.Errorf("refusing to serve on %s without --credentials: it is not a loopback address", ln.Addr())
	}
	var metricsLn net.Listener
	if addr := metricsAddress(*listenMetrics, creds != nil); addr != "" {
		if metricsLn, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("--listen-metrics: %w", err)
		}
		defer metricsLn.Close()
	}

	var backend server.Backend
	var live backuper // the store behind it, for live backups
	storeDir := *dir
	if cc == nil {
		e, err := engine.Open(*dir, eopts)
		if err != nil {
			return storeOpenError(*dir, err)
		}
		logSalvaged(log, e, "")
		// Closed last, after every request in flight has finished.
		defer func() {
			if err := e.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
				log.Error("closing the store", "err", err)
			}
		}()
		backend, live = e, e
	} else {
		rep, closeCluster, err := openCluster(ctx, cc, *dir, eopts, *timeout, log)
		if err != nil && ctx.Err() != nil {
			log.Info("stopped while joining the cluster")
			return nil
		}
		if err != nil {
			return err
		}
		// After the HTTP server: the follower, the store, then NATS.
		defer closeCluster()
		backend, live, storeDir = rep, rep, clusterStoreDir(*dir)
	}

	srv, err := server.New(backend, &server.Options{
		Credentials:           creds,
		Region:                *region,
		RequestTimeout:        *timeout,
		MaxConcurrentRequests: *maxInFlight,
		Logger:                log,
	})
	if err != nil {
		return usageErrorf(fs, "%v", err)
	}
	// Lets `facesearch backup` checkpoint the store while it is in use.
	stopAdmin, err := serveAdmin(ctx, live, storeDir, log)
	if err != nil {
		log.Warn("live backups are unavailable", "err", err)
	} else {
		defer stopAdmin()
	}
	if metricsLn != nil {
		ms := srv.HTTPServer(metricsLn.Addr().String())
		ms.Handler = srv.MetricsHandler()
		go ms.Serve(metricsLn)
		defer ms.Close() // scrapes need no draining
		log.Info("facesearch metrics listening", "addr", metricsLn.Addr().String())
	}
	hs := srv.HTTPServer(*listen)
	log.Info("facesearch listening", "addr", ln.Addr().String(), "data", *dir, "sigv4", creds != nil)

	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	shutCtx, cancel := context.WithTimeout(context.Background(), *timeout+10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		// Stragglers past the deadline are cut off; the engine still waits
		// for their calls before it closes, so no write is half-applied.
		log.Warn("requests still running at the shutdown deadline were cut off", "err", err)
		hs.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("HTTP server stopped; closing the store")
	return nil
}

// logSalvaged warns of what opening e dropped from a damaged write-ahead
// log under --salvage, if anything; then says where the dropped records
// come back from, if they do.
func logSalvaged(log *slog.Logger, e *engine.Engine, then string) {
	if d := e.Salvaged(); d != nil {
		log.Warn("salvaged the store: dropped the records of a damaged write-ahead log"+then, "file", d.File, "offset", d.Offset,
			"bytes", d.Bytes, "later_logs", d.LaterLogs, "saved_in", d.SavedIn)
	}
}

// storeOpenError says what to do about a store that did not open.
func storeOpenError(dir string, err error) error {
	if errors.Is(err, engine.ErrLocked) {
		return fmt.Errorf("the store in %s is in use by another facesearch process; stop it or choose another --data directory", dir)
	}
	if d := (*engine.LogDamage)(nil); errors.As(err, &d) {
		return fmt.Errorf("open %s: %w; to open it without those records, start once with --salvage", dir, err)
	}
	return fmt.Errorf("open %s: %w", dir, err)
}

// isLoopbackHost reports whether host (from --listen) names only the local
// machine; "" and unspecified addresses listen on every interface.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// defaultMetricsAddr is where a server that checks signatures serves its
// metrics unsigned unless told otherwise: Prometheus cannot sign, and
// loopback shows them to this machine only.
const defaultMetricsAddr = "127.0.0.1:9464"

// metricsAddress is the address of the metrics listener for the flag's
// value, or "" for none: the default applies only when signatures are
// checked, as an unsigned server's API listener already serves /metrics.
func metricsAddress(flag string, signed bool) string {
	switch {
	case flag == "off":
		return ""
	case flag == "" && signed:
		return defaultMetricsAddr
	}
	return flag
}
