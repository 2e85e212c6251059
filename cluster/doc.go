// Package cluster runs facesearch nodes as one engine over NATS JetStream:
// a replicated, ordered log of commands that every node applies, in order,
// to its own store. Consensus and replication are JetStream's; this package
// holds the log's client side, and the cluster node that serves the
// engine's 16 operations over it ([Replica], [OpenReplica]).
//
// What is here: an embedded NATS JetStream node ([StartNode]), connecting to
// an external NATS cluster ([Connect]), the command log's stream with its
// checks ([OpenLog]), publishing with deduplication and acknowledgement
// ([Log.Publish]), an in-order reader that reports gaps ([Log.Follow] and
// the [Applier] interface), the engine's applier ([EngineApplier], with
// [NewMutation] building its commands), trimming ([Log.Trim]), the command
// envelope ([Command], [DecodeCommand]), the clock that stamps it
// ([Clock]), the shared read barrier ([Barrier]) with the applied
// sequence it waits on ([Progress]), and the store checkpoints in the
// object store ([OpenCheckpoints], [Checkpoints.Take]) that new nodes and
// nodes behind the trimmed log bootstrap from ([Checkpoints.Bootstrap]),
// with the trimming policy ([Checkpoints.Trim]) and the [Checkpointer]
// that decides who takes them. docs/cluster.md gives the design and what
// is still to come.
package cluster
