package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure [Open]. A nil *Options is valid and means all defaults.
type Options struct {
	// ReadOnly opens the store for reading only: every mutating call fails.
	// The default value is false.
	ReadOnly bool
	// CacheSize is the storage block cache in bytes. The default value is 64 MiB.
	CacheSize int64
	// IdempotencyTTL is how long a ClientRequestToken is remembered.
	// The default value is 24 hours.
	IdempotencyTTL time.Duration
	// MinFreeBytes is the free-space floor: a mutating call that would
	// leave less free space than this on the store's file system fails with
	// ThrottlingException (see [ErrDiskFull]); reads go on, and writes
	// resume once there is more. A negative value turns the floor off; a
	// flush failing for lack of space refuses writes the same way whatever
	// the floor.
	// The default value is 5% of the file system, at least 256 MiB and at
	// most 20 GiB.
	MinFreeBytes int64
	// Salvage opens a store whose write-ahead log is damaged before its end
	// (see [LogDamage]) by dropping the records from the damage on, after
	// saving the logs as they were; [Engine.Salvaged] says what was dropped.
	// Without it, Open refuses such a store. The default value is false.
	Salvage bool
	// AccountID is the AWS account ID (12 digits) in collection ARNs.
	// The default value is "000000000000".
	AccountID string
	// Region is the region in collection ARNs of calls whose context names
	// none (see [WithRegion]). The default value is "local".
	Region string
	// PageTokenSecret, when set, signs and checks page tokens (NextToken)
	// instead of the store's own secret, so that the engines of several
	// nodes holding the same data accept each other's tokens (cluster mode
	// shares one through NATS). It must be at least 16 bytes. The default
	// value is nil: the secret made with the store.
	PageTokenSecret []byte
	// FS is the file system the store lives on; tests pass one that fails
	// or loses writes on purpose (Pebble's vfs/errorfs, vfs.NewCrashableMem).
	// The default value is the operating system's file system (vfs.Default).
	FS vfs.FS
}

// Validate reports every problem of o at once.
func (o *Options) Validate() error {
	var errs []error
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("engine: Options.CacheSize %d is negative", o.CacheSize))
	}
	if o.IdempotencyTTL < 0 {
		errs = append(errs, fmt.Errorf("engine: Options.IdempotencyTTL %v is negative", o.IdempotencyTTL))
	}
	if n := len(o.PageTokenSecret); n > 0 && n < minPageTokenSecret {
		errs = append(errs, fmt.Errorf("engine: Options.PageTokenSecret has %d bytes, want at least %d", n, minPageTokenSecret))
	}
	errs = append(errs, o.arnProblems()...)
	return errors.Join(errs...)
}

// minPageTokenSecret is the shortest PageTokenSecret: an HMAC key shorter
// than half of SHA-256's output weakens the tokens' tamper evidence.
const minPageTokenSecret = 16

func (o *Options) clone() *Options {
	if o == nil {
		return &Options{}
	}
	c := *o
	c.PageTokenSecret = append([]byte(nil), o.PageTokenSecret...)
	return &c
}

func (o *Options) ensureDefaults() {
	if o.CacheSize == 0 {
		o.CacheSize = 64 << 20
	}
	if o.IdempotencyTTL == 0 {
		o.IdempotencyTTL = 24 * time.Hour
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	o.arnDefaults()
}
