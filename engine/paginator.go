package engine

import (
	"context"
	"iter"
)

// ListUsersAPIClient is what a [ListUsersPaginator] pages through; *Engine
// satisfies it.
type ListUsersAPIClient interface {
	ListUsers(context.Context, *ListUsersInput) (*ListUsersOutput, error)
}

var _ ListUsersAPIClient = (*Engine)(nil)

// ListUsersPaginatorOptions are the AWS CLI's pagination settings.
type ListUsersPaginatorOptions struct {
	// PageSize is the number of users asked for per call (ListUsers
	// MaxResults, 1-500). The default value is 0: the input's MaxResults,
	// else 100.
	PageSize int32
	// MaxItems is the total number of users to return; when a walk stops
	// there, the last page's NextToken resumes right after the last user
	// returned. The default value is 0: no limit.
	MaxItems int
	// StartingToken is a NextToken from an earlier walk to resume from.
	// The default value is "": the first user.
	StartingToken string
}

// ListUsersPaginator pages through ListUsers, in the shape of
// aws-sdk-go-v2's paginators.
type ListUsersPaginator struct {
	client    ListUsersAPIClient
	params    ListUsersInput
	options   ListUsersPaginatorOptions
	nextToken string
	firstPage bool
	returned  int
}

// NewListUsersPaginator returns a paginator over params' collection.
func NewListUsersPaginator(client ListUsersAPIClient, params *ListUsersInput, optFns ...func(*ListUsersPaginatorOptions)) *ListUsersPaginator {
	if params == nil {
		params = &ListUsersInput{}
	}
	var o ListUsersPaginatorOptions
	for _, fn := range optFns {
		fn(&o)
	}
	if o.PageSize == 0 && params.MaxResults != nil {
		o.PageSize = *params.MaxResults
	}
	if o.StartingToken == "" {
		o.StartingToken = params.NextToken
	}
	return &ListUsersPaginator{client: client, params: *params, options: o, nextToken: o.StartingToken, firstPage: true}
}

// HasMorePages reports whether NextPage would return another page.
func (p *ListUsersPaginator) HasMorePages() bool {
	if p.options.MaxItems > 0 && p.returned >= p.options.MaxItems {
		return false
	}
	return p.firstPage || p.nextToken != ""
}

// NextToken is where a later walk can resume (StartingToken); "" once the
// collection is exhausted.
func (p *ListUsersPaginator) NextToken() string { return p.nextToken }

// NextPage fetches the next page.
func (p *ListUsersPaginator) NextPage(ctx context.Context) (*ListUsersOutput, error) {
	if !p.HasMorePages() {
		return nil, invalid("no more pages")
	}
	in := p.params
	in.NextToken = p.nextToken
	size := p.options.PageSize
	if size == 0 {
		size = DefaultListUsersPageSize
	}
	if p.options.MaxItems > 0 {
		// Ask only for what is left so the page ends exactly at MaxItems and
		// its NextToken resumes right after it.
		size = int32(min(int(size), p.options.MaxItems-p.returned))
	}
	in.MaxResults = &size
	out, err := p.client.ListUsers(ctx, &in)
	if err != nil {
		return nil, err
	}
	p.firstPage = false
	p.nextToken = out.NextToken
	p.returned += len(out.Users)
	return out, nil
}

// All yields every remaining user across pages; it stops at the first error,
// yielding it.
func (p *ListUsersPaginator) All(ctx context.Context) iter.Seq2[User, error] {
	return func(yield func(User, error) bool) {
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield(User{}, err)
				return
			}
			for _, u := range page.Users {
				if !yield(u, nil) {
					return
				}
			}
		}
	}
}

// AllUsers yields every user of a collection in primary-key order.
func (e *Engine) AllUsers(ctx context.Context, collectionID string) iter.Seq2[User, error] {
	return NewListUsersPaginator(e, &ListUsersInput{CollectionId: collectionID}).All(ctx)
}
