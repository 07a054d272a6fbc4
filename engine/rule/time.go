package rule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/smartgroups/smartgroups/engine/internal/jsonscan"
)

// Millis is an instant as milliseconds since the Unix epoch (UTC). The engine
// works at millisecond resolution throughout; finer RFC 3339 fractions are
// truncated.
type Millis = int64

var errNotTimestamp = errors.New("expected an RFC 3339 timestamp with an offset or integer epoch milliseconds")

// ParseTimestamp accepts an RFC 3339 string with an offset or a JSON integer
// of epoch milliseconds.
func ParseTimestamp(raw json.RawMessage) (Millis, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, errNotTimestamp
	}
	if s, ok := jsonscan.PlainString(raw); ok {
		if ms, ok := parseRFC3339Millis(s); ok {
			return ms, nil
		}
		return parseTimestampString(string(s))
	}
	if jsonscan.IsNumber(raw) {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is not an integer of epoch milliseconds", string(raw))
		}
		return n, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errNotTimestamp
		}
		return parseTimestampString(s)
	}
	return parseEpochMillis(raw)
}

// parseRFC3339Millis parses the timestamps time.Parse(time.RFC3339Nano, s)
// reads with its own RFC 3339 fast path (which it tries first), to the same
// instant, without converting s to a string; ok is false for anything else,
// which is then left to time.Parse.
func parseRFC3339Millis(s []byte) (ms Millis, ok bool) {
	if len(s) < len("2006-01-02T15:04:05") {
		return 0, false
	}
	ok = true
	num := func(b []byte, lo, hi int) int {
		x := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				ok = false
				return lo
			}
			x = x*10 + int(c-'0')
		}
		if x < lo || x > hi {
			ok = false
			return lo
		}
		return x
	}
	year := num(s[0:4], 0, 9999)
	month := num(s[5:7], 1, 12)
	day := num(s[8:10], 1, daysInMonth(month, year))
	hour := num(s[11:13], 0, 23)
	minute := num(s[14:16], 0, 59)
	sec := num(s[17:19], 0, 59)
	if !ok || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	s = s[19:]
	nsec := 0
	if len(s) >= 2 && s[0] == '.' && jsonscan.IsDigit(s[1]) {
		n := 2
		for n < len(s) && jsonscan.IsDigit(s[n]) {
			n++
		}
		digits := s[1:n]
		if len(digits) > 9 {
			digits = digits[:9] // finer digits are dropped, as time.Parse does
		}
		for _, c := range digits {
			nsec = nsec*10 + int(c-'0')
		}
		for i := len(digits); i < 9; i++ {
			nsec *= 10
		}
		s = s[n:]
	}
	offset := 0
	if len(s) != 1 || s[0] != 'Z' {
		if len(s) != len("-07:00") {
			return 0, false
		}
		hr := num(s[1:3], 0, 23)
		mm := num(s[4:6], 0, 59)
		if !ok || (s[0] != '-' && s[0] != '+') || s[3] != ':' {
			return 0, false
		}
		offset = (hr*60 + mm) * 60
		if s[0] == '-' {
			offset = -offset
		}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.UnixMilli() - int64(offset)*1000, true
}

func daysInMonth(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func parseTimestampString(s string) (Millis, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an RFC 3339 timestamp with an offset", s)
	}
	return t.UnixMilli(), nil
}

func parseEpochMillis(raw json.RawMessage) (Millis, error) {
	var f json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&f); err != nil {
		return 0, errNotTimestamp
	}
	n, err := f.Int64()
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer of epoch milliseconds", string(raw))
	}
	return n, nil
}

// FormatMillis renders an instant as RFC 3339 UTC with millisecond precision.
func FormatMillis(ms Millis) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// ParseTime parses a flag value: RFC 3339 or epoch milliseconds.
func ParseTime(s string) (Millis, error) {
	if s == "" {
		return 0, errors.New("empty time")
	}
	if s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T") {
		return parseEpochMillis(json.RawMessage(s))
	}
	return parseTimestampString(s)
}
