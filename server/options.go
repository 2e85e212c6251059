package server

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Options configure [New]. A nil *Options is valid and means all defaults.
type Options struct {
	// Credentials maps AWS access key IDs to their secret access keys (see
	// [LoadCredentials]). When it is not empty, every request except
	// GET /healthz must carry a valid AWS Signature Version 4 made with one
	// of these keys for the service "rekognition", covering host,
	// X-Amz-Date, Content-Type and every X-Amz-* header it has.
	// The default value is nil: requests are not authenticated, so serve only
	// on a loopback address.
	Credentials map[string]string
	// Region, when set, is the only region a signature's credential scope
	// may name; a request signed for another gets InvalidSignatureException.
	// Collection ARNs name the region a request was signed for.
	// The default value is "": any region.
	Region string
	// UnsignedMetrics serves GET /metrics without a signature even when
	// Credentials is set, for scrapers that cannot sign requests.
	// The default value is false.
	UnsignedMetrics bool
	// MaxBodyBytes bounds a request body; a larger one is refused with
	// ImageTooLargeException before more than this many bytes are read.
	// The default value is 8 MiB.
	MaxBodyBytes int64
	// BodyTimeout and MinBodyRate pace a request body, which is read in
	// full before the request takes one of [Options.MaxConcurrentRequests]:
	// it must arrive within BodyTimeout plus one second for every
	// MinBodyRate bytes, or it gets RequestTimeoutException. A slow body
	// costs its own connection, never another caller's turn.
	// The default values are 10 seconds and 64 KiB per second.
	BodyTimeout time.Duration
	MinBodyRate int64
	// MaxBufferedBodyBytes bounds the memory held by the bodies of all
	// requests being read or served at once; a body that would go over it
	// gets ThrottlingException. Bodies arriving slowly hold only what has
	// arrived. The default value is 1 GiB.
	MaxBufferedBodyBytes int64
	// MaxConcurrentRequests bounds the operations in flight; one more is
	// answered at once with ThrottlingException instead of queueing, so load
	// cannot grow memory without bound. The default value is 256.
	MaxConcurrentRequests int
	// RequestTimeout bounds one operation; its context is cancelled after
	// it and a request that did not finish gets RequestTimeoutException.
	// The default value is 30 seconds.
	RequestTimeout time.Duration
	// MaxClockSkew is how far a signed request's X-Amz-Date may be from the
	// server's clock, as in AWS. The default value is 15 minutes.
	MaxClockSkew time.Duration
	// Logger receives one structured record per request and the details of
	// internal errors. The default value is [slog.Default].
	Logger *slog.Logger
}

// Validate reports every problem of o at once.
func (o *Options) Validate() error {
	var errs []error
	for id, secret := range o.Credentials {
		if id == "" {
			errs = append(errs, errors.New("server: Options.Credentials has an empty access key ID"))
		} else if secret == "" {
			errs = append(errs, fmt.Errorf("server: Options.Credentials[%q] has an empty secret", id))
		}
	}
	if o.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("server: Options.MaxBodyBytes %d is negative", o.MaxBodyBytes))
	}
	if o.BodyTimeout < 0 {
		errs = append(errs, fmt.Errorf("server: Options.BodyTimeout %v is negative", o.BodyTimeout))
	}
	if o.MaxBufferedBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("server: Options.MaxBufferedBodyBytes %d is negative", o.MaxBufferedBodyBytes))
	}
	if o.MinBodyRate < 0 {
		errs = append(errs, fmt.Errorf("server: Options.MinBodyRate %d is negative", o.MinBodyRate))
	}
	if o.MaxConcurrentRequests < 0 {
		errs = append(errs, fmt.Errorf("server: Options.MaxConcurrentRequests %d is negative", o.MaxConcurrentRequests))
	}
	if o.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("server: Options.RequestTimeout %v is negative", o.RequestTimeout))
	}
	if o.MaxClockSkew < 0 {
		errs = append(errs, fmt.Errorf("server: Options.MaxClockSkew %v is negative", o.MaxClockSkew))
	}
	return errors.Join(errs...)
}

func (o *Options) clone() *Options {
	if o == nil {
		return &Options{}
	}
	c := *o
	if o.Credentials != nil {
		c.Credentials = make(map[string]string, len(o.Credentials))
		for k, v := range o.Credentials {
			c.Credentials[k] = v
		}
	}
	return &c
}

func (o *Options) ensureDefaults() {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 8 << 20
	}
	if o.BodyTimeout == 0 {
		o.BodyTimeout = 10 * time.Second
	}
	if o.MaxBufferedBodyBytes == 0 {
		o.MaxBufferedBodyBytes = 1 << 30
	}
	if o.MinBodyRate == 0 {
		o.MinBodyRate = 64 << 10
	}
	if o.MaxConcurrentRequests == 0 {
		o.MaxConcurrentRequests = 256
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.MaxClockSkew == 0 {
		o.MaxClockSkew = 15 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}
