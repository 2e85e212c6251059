package server

import (
	"context"

	"github.com/facesearch/facesearch/engine"
)

// Backend is what a [Server] serves: the 16 operations, with the engine's
// inputs, outputs and errors. An [*engine.Engine] is one; a cluster node
// that replicates the engine over a log is another.
//
// A Backend that also has a method Health() error is asked on every
// GET /healthz: a non-nil error answers 503 with its text, so that a load
// balancer stops sending requests to a node that cannot serve them.
type Backend interface {
	CreateCollection(context.Context, *engine.CreateCollectionInput) (*engine.CreateCollectionOutput, error)
	DeleteCollection(context.Context, *engine.DeleteCollectionInput) (*engine.DeleteCollectionOutput, error)
	DescribeCollection(context.Context, *engine.DescribeCollectionInput) (*engine.DescribeCollectionOutput, error)
	ListCollections(context.Context, *engine.ListCollectionsInput) (*engine.ListCollectionsOutput, error)
	IndexFaces(context.Context, *engine.IndexFacesInput) (*engine.IndexFacesOutput, error)
	ListFaces(context.Context, *engine.ListFacesInput) (*engine.ListFacesOutput, error)
	DeleteFaces(context.Context, *engine.DeleteFacesInput) (*engine.DeleteFacesOutput, error)
	SearchFaces(context.Context, *engine.SearchFacesInput) (*engine.SearchFacesOutput, error)
	SearchFacesByImage(context.Context, *engine.SearchFacesByImageInput) (*engine.SearchFacesByImageOutput, error)
	CreateUser(context.Context, *engine.CreateUserInput) (*engine.CreateUserOutput, error)
	DeleteUser(context.Context, *engine.DeleteUserInput) (*engine.DeleteUserOutput, error)
	ListUsers(context.Context, *engine.ListUsersInput) (*engine.ListUsersOutput, error)
	AssociateFaces(context.Context, *engine.AssociateFacesInput) (*engine.AssociateFacesOutput, error)
	DisassociateFaces(context.Context, *engine.DisassociateFacesInput) (*engine.DisassociateFacesOutput, error)
	SearchUsers(context.Context, *engine.SearchUsersInput) (*engine.SearchUsersOutput, error)
	SearchUsersByImage(context.Context, *engine.SearchUsersByImageInput) (*engine.SearchUsersByImageOutput, error)
}

var _ Backend = (*engine.Engine)(nil)

// healthChecker is a [Backend] that can say it cannot serve.
type healthChecker interface {
	Health() error
}

// localReader is a [Backend] whose reads may cost more than a local lookup
// (a replicated node's linearizable read goes through its log): metrics
// read the local engine it returns instead.
type localReader interface {
	LocalEngine() *engine.Engine
}
