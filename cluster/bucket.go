package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// errShort: an object's read ended before its size, as one served by a
// replica that has not caught up does.
var errShort = errors.New("cluster: checkpoint read ended early")

// readAttempts bounds the reads of one object that end early.
const readAttempts = 3

// again runs read up to readAttempts times while it fails with errShort.
func again(ctx context.Context, read func() error) error {
	for i := 1; ; i++ {
		err := read()
		if !errors.Is(err, errShort) || i == readAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(i) * 100 * time.Millisecond):
		}
	}
}

// visible runs op, an operation on one object, again while it fails for
// not finding the object, for up to RequestTimeout: the bucket answers
// lookups from any replica (direct gets), and one that has not caught up
// yet does not know an object just written.
func (c *Checkpoints) visible(ctx context.Context, op func() error) error {
	deadline := time.Now().Add(c.log.opts.RequestTimeout)
	for {
		err := op()
		if !errors.Is(err, jetstream.ErrObjectNotFound) && !errors.Is(err, jetstream.ErrUpdateMetaDeleted) ||
			time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// errDownloadStalled: an object's download waited too long for its next bytes.
var errDownloadStalled = errors.New("cluster: checkpoint download stalled")

// openObject opens the named object for reading. A read waiting longer than
// the stall timeout for data fails with errDownloadStalled: the download of an
// object deleted meanwhile (its chunks purged) would otherwise wait forever.
func (c *Checkpoints) openObject(ctx context.Context, name string) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	var res jetstream.ObjectResult
	err := c.visible(ctx, func() (err error) {
		res, err = c.obs.Get(ctx, name)
		return err
	})
	if err != nil {
		cancel(nil)
		return nil, err
	}
	r := &stallReader{res: res, ctx: ctx, cancel: cancel, stall: c.stall}
	r.timer = time.AfterFunc(c.stall, func() { cancel(errDownloadStalled) })
	return r, nil
}

type stallReader struct {
	res    jetstream.ObjectResult
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	stall  time.Duration
}

func (r *stallReader) Read(p []byte) (int, error) {
	n, err := r.res.Read(p)
	if n > 0 {
		r.timer.Reset(r.stall)
	}
	if err != nil && errors.Is(context.Cause(r.ctx), errDownloadStalled) {
		err = fmt.Errorf("%w: no data for %s", errDownloadStalled, r.stall)
	}
	return n, err
}

func (r *stallReader) Close() error {
	r.timer.Stop()
	r.cancel(nil)
	return r.res.Close()
}

// objects lists every object of the bucket, deleted ones included. The
// listing may start from a replica that has not caught up (and then list
// nothing at all), so it is taken again, for up to RequestTimeout, until
// it holds as many objects as the stream's leader counts.
func (c *Checkpoints) objects(ctx context.Context) ([]*jetstream.ObjectInfo, error) {
	stream, err := c.log.js.Stream(ctx, "OBJ_"+c.opts.Bucket)
	if err != nil {
		return nil, fmt.Errorf("cluster: list checkpoints in %s: %w", c.opts.Bucket, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("$O."+c.opts.Bucket+".M.>"))
	if err != nil {
		return nil, fmt.Errorf("cluster: list checkpoints in %s: %w", c.opts.Bucket, err)
	}
	deadline := time.Now().Add(c.log.opts.RequestTimeout)
	for {
		infos, err := c.obs.List(ctx, jetstream.ListObjectsShowDeleted())
		if errors.Is(err, jetstream.ErrNoObjectsFound) {
			err = nil
		}
		if err != nil {
			return nil, fmt.Errorf("cluster: list checkpoints in %s: %w", c.opts.Bucket, err)
		}
		if len(infos) >= len(info.State.Subjects) || time.Now().After(deadline) {
			return infos, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
