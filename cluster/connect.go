package cluster

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnectOptions configure a connection to NATS. A nil *ConnectOptions is
// valid.
type ConnectOptions struct {
	// Name is the client name NATS reports in its monitoring. The default
	// value is "facesearch".
	Name string
	// DialTimeout bounds each attempt to reach one server. The default value
	// is 2s.
	DialTimeout time.Duration
	// ReconnectWait is the pause between rounds of reconnection after a
	// connection is lost; the client reconnects without end, to any server of
	// the cluster. The default value is 250ms.
	ReconnectWait time.Duration
}

// clientSchemes are the URL schemes the NATS client dials.
var clientSchemes = []string{"nats", "tls", "ws", "wss"}

// Connect connects to the first reachable NATS server among urls: an
// external cluster's client URLs, or an embedded [Node]'s [Node.ClientURL].
// When none is reachable it fails at once with an [*UnreachableError] naming
// them all, rather than retrying in the background.
func Connect(urls []string, opts *ConnectOptions) (*nats.Conn, error) {
	o := ConnectOptions{}
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = "facesearch"
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = 250 * time.Millisecond
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("%w: no NATS URL given", ErrInvalidOptions)
	}
	var list []string
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil || p.Host == "" || !slices.Contains(clientSchemes, p.Scheme) {
			list = append(list, fmt.Sprintf("%q is not a NATS client URL (nats://host:port)", u))
		}
	}
	if err := problems(ErrInvalidOptions, "NATS URLs", list); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(strings.Join(urls, ","),
		nats.Name(o.Name),
		nats.Timeout(o.DialTimeout),
		nats.DontRandomize(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(o.ReconnectWait),
	)
	if err != nil {
		return nil, &UnreachableError{URLs: append([]string(nil), urls...), Err: err}
	}
	return nc, nil
}
