package engine

import (
	"time"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// Kind is the logical input stream a record comes from. Runtimes map their
// physical topic names (with prefix) onto these kinds.
type Kind string

// The four input kinds of SPEC §4.1.
const (
	KindProfiles    Kind = "profiles"
	KindActivities  Kind = "activities"
	KindProperties  Kind = "properties"
	KindDefinitions Kind = "definitions"
)

// ParseKind maps a logical topic name to its Kind.
func ParseKind(s string) (Kind, bool) {
	switch Kind(s) {
	case KindProfiles, KindActivities, KindProperties, KindDefinitions:
		return Kind(s), true
	}
	return "", false
}

// Record is one input record with its position. Value is nil for a
// tombstone (a Kafka record with a null value, or "value": null in a file).
type Record struct {
	Kind      Kind
	Topic     string // physical topic name, reported in dead letters
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	// Produced is when the record was produced (Kafka record timestamp);
	// zero when unknown. Used for the event-to-output latency metric only.
	Produced time.Time
	// Err is set by a source that could not frame the record (for example
	// an input line that is not JSON); the engine dead-letters the record
	// with this reason.
	Err string
}

// Tombstone reports whether the record has a null value.
func (r Record) Tombstone() bool { return r.Value == nil }

// Op is a membership change direction.
type Op string

// Membership change ops.
const (
	OpAdd    Op = "add"
	OpRemove Op = "remove"
)

// Reason says why a membership changed (SPEC §4.2).
type Reason string

// Reasons of SPEC §4.2.
const (
	ReasonRule         Reason = "rule"
	ReasonTime         Reason = "time"
	ReasonEligibility  Reason = "eligibility"
	ReasonBlacklist    Reason = "blacklist"
	ReasonDefinition   Reason = "definition"
	ReasonGroupDeleted Reason = "group_deleted"
	ReasonErased       Reason = "erased"
)

// Reasons returns every Reason, in the order of SPEC §4.2.
func Reasons() []Reason {
	return []Reason{ReasonRule, ReasonTime, ReasonEligibility, ReasonBlacklist, ReasonDefinition,
		ReasonGroupDeleted, ReasonErased}
}

// Event is one membership change, the value of an output record keyed
// "<spot>/<group>/<member>" (SPEC §4.2). Partition is the input partition
// whose state produced it (0 in file mode); it is not serialized.
type Event struct {
	Spot      string `json:"spot"`
	Group     string `json:"group"`
	Member    string `json:"member"`
	Op        Op     `json:"op"`
	TS        string `json:"ts"`
	Reason    Reason `json:"reason"`
	Seq       uint64 `json:"seq"`
	Partition int32  `json:"-"`
}

// Key is the output record key "<spot>/<group>/<member>".
func (e Event) Key() string { return e.Spot + "/" + e.Group + "/" + e.Member }

// DeadLetter is an input record that was not applied, with the reason.
type DeadLetter struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	// Value is the raw value; for a record over the size limit (code
	// too_large) only its first TruncatedValueBytes, with Size and SHA256.
	Value  string `json:"value"`
	Reason string `json:"reason"`
	// Code is a short, bounded classification of Reason used as a metric
	// label (for example "invalid_json", "invalid_rule").
	Code Code `json:"code"`
	// Size is the whole value's size in bytes and SHA256 its hex SHA-256,
	// set only for a record over the size limit (code too_large), whose
	// Value is truncated; zero and empty otherwise, and then absent from
	// the JSON.
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

func checkSize(rec Record, lim Limits) *RecordError {
	if lim.MaxRecordBytes > 0 && len(rec.Value) > lim.MaxRecordBytes {
		return rerr(CodeTooLarge, "record value is %d bytes, more than the limit of %d bytes (max record bytes)", len(rec.Value), lim.MaxRecordBytes)
	}
	return nil
}

// noTS marks an erase from a tombstone, which carries no timestamp.
const noTS = rule.Millis(-1 << 62)
