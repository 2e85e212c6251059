package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/facesearch/facesearch/engine"
)

// A running server holds its store's lock, so offline commands cannot open
// it. For backups of a live store the server also listens on a Unix socket
// inside the store directory; `facesearch backup` asks it there for a
// checkpoint. The socket is the owner's alone (mode 0600), like the store.

const adminSocketName = "admin.sock"

// adminSocketPath is the socket of the store in dir.
func adminSocketPath(dir string) string { return filepath.Join(dir, adminSocketName) }

// serveAdmin answers POST /backup?to=DIR on dir's admin socket until ctx
// ends. The caller holds the store's lock, so a socket file left by a
// crashed server is stale and safe to replace.
func serveAdmin(ctx context.Context, e *engine.Engine, dir string, log *slog.Logger) (stop func(), err error) {
	path := adminSocketPath(dir)
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /backup", func(w http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("to")
		if !filepath.IsAbs(to) {
			http.Error(w, "to must be an absolute directory", http.StatusBadRequest)
			return
		}
		start := time.Now()
		if err := e.Backup(to); err != nil {
			log.Error("backup failed", "to", to, "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		log.Info("backup written", "to", to, "duration", time.Since(start))
		fmt.Fprintln(w, "ok")
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	return func() {
		hs.Close()
		os.Remove(path)
	}, nil
}

// errNoAdmin means no server answers on the store's admin socket.
var errNoAdmin = errors.New("no server answers on the store's admin socket")

// requestBackup asks the server holding the store in dir to checkpoint it
// into to.
func requestBackup(ctx context.Context, dir, to string) error {
	abs, err := filepath.Abs(to)
	if err != nil {
		return err
	}
	sock := adminSocketPath(dir)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://facesearch/backup?to="+url.QueryEscape(abs), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w (%v)", errNoAdmin, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the server refused the backup: %s", strings.TrimSpace(string(body)))
	}
	return nil
}
