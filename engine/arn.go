package engine

import (
	"context"
	"fmt"
)

// Collection ARNs name the region and account a Rekognition client expects:
// arn:aws:rekognition:<region>:<account>:collection/<id>.

const (
	defaultAccountID = "000000000000"
	defaultRegion    = "local"
)

type regionKey struct{}

// WithRegion returns a context whose calls name region in the collection
// ARNs they return (CreateCollection's CollectionArn, DescribeCollection's
// CollectionARN), as a Rekognition endpoint names its own. The server passes
// the region of each request's SigV4 credential scope. An invalid region is
// ignored: [Options.Region] applies.
func WithRegion(ctx context.Context, region string) context.Context {
	if !validRegion(region) {
		return ctx
	}
	return context.WithValue(ctx, regionKey{}, region)
}

// validRegion reports whether s can stand in an ARN as a region: 1 to 64
// lowercase letters, digits and hyphens (us-east-1, local).
func validRegion(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// arnProblems are the problems of o's ARN settings, for [Options.Validate].
func (o *Options) arnProblems() []error {
	var errs []error
	if o.AccountID != "" && !validAccountID(o.AccountID) {
		errs = append(errs, fmt.Errorf("engine: Options.AccountID %q is not 12 digits", o.AccountID))
	}
	if o.Region != "" && !validRegion(o.Region) {
		errs = append(errs, fmt.Errorf("engine: Options.Region %q is not 1-64 lowercase letters, digits and hyphens", o.Region))
	}
	return errs
}

func (o *Options) arnDefaults() {
	if o.AccountID == "" {
		o.AccountID = defaultAccountID
	}
	if o.Region == "" {
		o.Region = defaultRegion
	}
}

// collectionARN is collection id's ARN for a call of context ctx.
func (e *Engine) collectionARN(ctx context.Context, id string) string {
	region, _ := ctx.Value(regionKey{}).(string)
	if region == "" {
		region = e.opts.Region
	}
	return "arn:aws:rekognition:" + region + ":" + e.opts.AccountID + ":collection/" + id
}
