package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// Code is the short, bounded class of why a record was dead-lettered (or a
// definition write refused): the "code" field of a dead letter, the reason
// label of smartgroups_dead_letters_total. docs/reference.md lists every
// code with an example.
type Code string

// The dead-letter codes. Each RecordError carries exactly one of them.
const (
	// CodeTooLarge: the record value is over the record size limit
	// (Limits.MaxRecordBytes). Its dead letter carries the first
	// TruncatedValueBytes of the value, its size and its SHA-256.
	CodeTooLarge Code = "too_large"
	// CodeInvalidInput: the source could not frame the record (for example
	// an input line of process that is not JSON).
	CodeInvalidInput Code = "invalid_input"
	// CodeUnknownTopic: the record comes from a topic that is none of the
	// four input topics, or is not a member record where one is expected.
	CodeUnknownTopic Code = "unknown_topic"
	// CodeInvalidJSON: the value is not valid UTF-8 or not a JSON object.
	CodeInvalidJSON Code = "invalid_json"
	// CodeInvalidKey: the key is not of the form its topic requires
	// (<spot>/<member>, <spot>/<kind>/<id>, <spot>/blacklist/<group>/<member>).
	CodeInvalidKey Code = "invalid_key"
	// CodeKeyMismatch: the key does not match the spot, member, kind or id
	// of the value.
	CodeKeyMismatch Code = "key_mismatch"
	// CodeInvalidRecord: the record is well-formed but means nothing, such
	// as a null value on a topic other than profiles.
	CodeInvalidRecord Code = "invalid_record"
	// CodeMissingField: a required field is absent.
	CodeMissingField Code = "missing_field"
	// CodeInvalidField: a field has the wrong JSON type or a value out of
	// its range (a timestamp, a list over a limit such as tags per member).
	CodeInvalidField Code = "invalid_field"
	// CodeInvalidID: an id is empty, longer than 256 bytes or otherwise not
	// an id.
	CodeInvalidID Code = "invalid_id"
	// CodeTypeMismatch: a custom-property value or form answer does not fit
	// the type its schema declares.
	CodeTypeMismatch Code = "type_mismatch"
	// CodeUnknownActivityType: an activity's type is not one of the
	// activity types of SPEC §2.
	CodeUnknownActivityType Code = "unknown_activity_type"
	// CodeInvalidDefinition: a definition is well-formed but not allowed,
	// such as a blacklist entry of a static group.
	CodeInvalidDefinition Code = "invalid_definition"
	// CodeInvalidRule: a smart group's rule does not parse or compile,
	// references what does not exist, or is over a rule limit (depth,
	// nodes, values per list).
	CodeInvalidRule Code = "invalid_rule"
	// CodeCycle: group triggers would make smart groups depend on
	// themselves.
	CodeCycle Code = "cycle"
	// CodeGroupTypeChange: an update would change a group from static to
	// smart or back.
	CodeGroupTypeChange Code = "group_type_change"
	// CodeReferenced: a delete or type change of a schema, option, tag or
	// group that smart groups still reference.
	CodeReferenced Code = "referenced"
	// CodeUnknownGroup: a blacklist entry names a group that does not
	// exist.
	CodeUnknownGroup Code = "unknown_group"
)

// Codes returns every dead-letter code, in the order they are declared.
func Codes() []Code {
	return []Code{CodeTooLarge, CodeInvalidInput, CodeUnknownTopic, CodeInvalidJSON, CodeInvalidKey,
		CodeKeyMismatch, CodeInvalidRecord, CodeMissingField, CodeInvalidField, CodeInvalidID,
		CodeTypeMismatch, CodeUnknownActivityType, CodeInvalidDefinition, CodeInvalidRule, CodeCycle,
		CodeGroupTypeChange, CodeReferenced, CodeUnknownGroup}
}

// RecordError is why a record was dead-lettered: Code is a short bounded
// class (a metric label), Reason a sentence a person can act on.
type RecordError struct {
	Code   Code
	Reason string
}

func (e *RecordError) Error() string { return e.Reason }

func rerr(code Code, format string, args ...any) *RecordError {
	return &RecordError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// TruncatedValueBytes is how much of the value of a record over the size
// limit its dead letter carries (SPEC §4: the first 64 KiB).
const TruncatedValueBytes = 64 << 10

// newDeadLetter is the dead letter of rec refused with e. The value of a
// record over the size limit is cut to its first TruncatedValueBytes (less
// at most 3 bytes, so as not to split a UTF-8 character) and the dead
// letter carries the whole value's size and SHA-256 instead.
func newDeadLetter(rec *Record, e *RecordError) DeadLetter {
	d := DeadLetter{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Key: string(rec.Key), Reason: e.Reason, Code: e.Code}
	if e.Code != CodeTooLarge {
		d.Value = string(rec.Value)
		return d
	}
	sum := sha256.Sum256(rec.Value)
	d.Size, d.SHA256 = int64(len(rec.Value)), hex.EncodeToString(sum[:])
	d.Value = string(truncateUTF8(rec.Value, TruncatedValueBytes))
	return d
}

// truncateUTF8 returns the first n bytes of b, or fewer (by at most 3) when
// byte n starts inside a UTF-8 sequence.
func truncateUTF8(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	cut := n
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(b[cut]); i++ {
		cut--
	}
	return b[:cut]
}
