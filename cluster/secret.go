package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// The page-token signing secret is shared through a JetStream key-value
// bucket, so that a NextToken one node issued is accepted by every other:
// the first node to start creates it, create-if-absent, and the others read
// the same value.
const (
	secretBucketSuffix = "_SECRETS"
	pageTokenSecretKey = "page-token"
	pageTokenSecretLen = 32
)

// secretBucket is the key-value bucket of the log's shared secrets.
func (l *Log) secretBucket() string { return l.opts.Stream + secretBucketSuffix }

// PageTokenSecret returns the cluster's page-token signing secret (see
// [engine.Options.PageTokenSecret]), creating it if no node has yet. It is
// kept in the key-value bucket <stream>_SECRETS, replicated like the log;
// through a cluster still forming it retries until ctx is done.
func (l *Log) PageTokenSecret(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, pageTokenSecretLen)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("cluster: make the page-token secret: %w", err)
	}
	var secret []byte
	err := retry(ctx, func(ctx context.Context) error {
		kv, err := l.js.KeyValue(ctx, l.secretBucket())
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = l.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket:      l.secretBucket(),
				Description: "facesearch cluster secrets",
				History:     1,
				Storage:     jetstream.FileStorage,
				Replicas:    l.opts.Replicas,
			})
		}
		if err != nil {
			return err
		}
		if _, err = kv.Create(ctx, pageTokenSecretKey, fresh); err == nil {
			secret = fresh
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		e, err := kv.Get(ctx, pageTokenSecretKey)
		if err != nil {
			return err
		}
		secret = e.Value()
		return nil
	}, l.opts.RequestTimeout, func(err error) bool {
		// A key that exists but is not found yet: a direct get served by a
		// replica behind the one that refused the create.
		return transient(err) || errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrKeyNotFound)
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: page-token secret in bucket %s: %w", l.secretBucket(), err)
	}
	if len(secret) != pageTokenSecretLen {
		return nil, fmt.Errorf("cluster: the page-token secret in bucket %s has %d bytes, want %d", l.secretBucket(), len(secret), pageTokenSecretLen)
	}
	return secret, nil
}
