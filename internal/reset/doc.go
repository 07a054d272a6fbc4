// Package reset implements `smartgroups reset`: it makes a stopped
// deployment rebuild its state from its input topics on its next start.
//
// A deployment's state is its local stores (each instance's data dir) and
// the changelog topic they are restored from, with the progress topic of
// its publications; its input positions live in that state, not in
// consumer-group offsets. Reset deletes the changelog and progress topics,
// the consumer group, the deployment's claims on its output topics (so
// that another deployment may take them over), optionally the output
// topics themselves, and, given a data dir, that instance's state. The
// next start finds no state and reads every input topic from its start.
//
// A deployment that is running must not be reset. Its instances are
// static members of the consumer group (group.instance.id), which stay
// members for the session timeout after a kill; reset removes them with a
// LeaveGroup request naming their instance ids, then watches the group
// for a while: an instance that is alive joins again and reset refuses,
// naming it. A dynamic member (one without an instance id) is refused at
// once.
package reset
