package engine

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/ and run as regular tests
// under `go test`; run a fuzzer with, for example:
//
//	go test ./engine -run '^$' -fuzz FuzzCompileRule -fuzztime 60s

var fuzzKinds = []Kind{KindProfiles, KindActivities, KindProperties, KindDefinitions, Kind("")}

// compactJSON compacts raw JSON for comparisons ("" when invalid).
func compactJSON(raw json.RawMessage) string {
	if raw == nil {
		return "<nil>"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "<invalid>"
	}
	return b.String()
}

func compactMap(m map[string]json.RawMessage) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = compactJSON(v)
	}
	return out
}

// encodeChange renders a decoded member change as a record value again.
func encodeChange(mc *MemberChange) []byte {
	v := map[string]any{"spot": mc.Spot, "member": mc.Member, "ts": mc.TS}
	switch {
	case mc.Erase:
		v["erase"] = true
	case mc.Kind == KindProfiles:
		v["profile"] = map[string]json.RawMessage(mc.Profile)
	case mc.Kind == KindActivities:
		a := mc.Activity
		v["type"] = a.Type
		if a.ID != "" {
			v["id"] = a.ID
		}
		if a.Resource != "" {
			v["resource"] = map[string]string{"id": a.Resource, "title": a.Title}
		}
	case mc.Kind == KindProperties:
		enc := func(m map[string]json.RawMessage) map[string]json.RawMessage {
			out := make(map[string]json.RawMessage, len(m))
			for k, x := range m {
				if x == nil {
					x = json.RawMessage("null")
				}
				out[k] = x
			}
			return out
		}
		if mc.Custom != nil {
			v["custom"] = enc(mc.Custom)
		}
		if mc.Form != nil {
			v["form"] = enc(mc.Form)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzDecodeMember(f *testing.F) {
	d := testDefs(f)
	lim := DefaultLimits()
	lim.MaxTags = 20
	f.Fuzz(func(t *testing.T, kind uint8, value []byte, key string, null bool) {
		rec := Record{Kind: fuzzKinds[int(kind)%len(fuzzKinds)], Topic: "t", Key: []byte(key), Value: value}
		if null {
			rec.Value = nil
		} else if rec.Value == nil {
			rec.Value = []byte{}
		}
		mc, rerr := DecodeMember(rec, lim, d)
		if (mc == nil) == (rerr == nil) {
			t.Fatalf("exactly one of change and error: %v %v", mc, rerr)
		}
		if rerr != nil {
			if rerr.Code == "" || rerr.Reason == "" {
				t.Fatalf("error without code or reason: %#v", rerr)
			}
			if !slices.Contains(Codes(), rerr.Code) {
				t.Fatalf("code %q is not one of Codes()", rerr.Code)
			}
			return
		}
		// A valid record names its member consistently with its key.
		if key != mc.Spot+"/"+mc.Member {
			t.Fatalf("key %q but spot %q member %q", key, mc.Spot, mc.Member)
		}
		if err := rule.CheckKeyID("spot", mc.Spot); err != nil {
			t.Fatal(err)
		}
		if err := rule.CheckID("member", mc.Member); err != nil {
			t.Fatal(err)
		}
		if mc.Kind != rec.Kind || mc.Unknown < 0 {
			t.Fatalf("kind %q unknown %d", mc.Kind, mc.Unknown)
		}
		if null {
			if !mc.Erase || mc.Kind != KindProfiles || mc.TS != noTS {
				t.Fatalf("tombstone decoded as %+v", mc)
			}
			return
		}
		if len(value) > lim.MaxRecordBytes {
			t.Fatalf("record of %d bytes accepted", len(value))
		}
		switch {
		case mc.Erase:
		case mc.Kind == KindProfiles:
			if mc.Profile == nil {
				t.Fatal("profile record without a patch")
			}
			for k := range mc.Profile {
				if ok := slices.Contains(rule.ProfileFields, k); !ok && k != "utm" {
					t.Fatalf("unknown profile field %q kept", k)
				}
			}
			var p rule.Profile
			mc.Profile.Apply(&p)
			if len(p.Tags) > lim.MaxTags {
				t.Fatalf("%d tags accepted", len(p.Tags))
			}
			if p.Status != nil && !slices.Contains(rule.Statuses, *p.Status) {
				t.Fatalf("status %q accepted", *p.Status)
			}
			for k := range p.UTM {
				if !slices.Contains(rule.UTMKeys, k) {
					t.Fatalf("utm key %q kept", k)
				}
			}
		case mc.Kind == KindActivities:
			a := mc.Activity
			if a == nil || !slices.Contains(rule.ActivityTypes, a.Type) || a.TS != mc.TS {
				t.Fatalf("activity %+v", a)
			}
			if rule.ActivityHasResource(a.Type) && a.Resource == "" {
				t.Fatalf("%s without a resource", a.Type)
			}
		case mc.Kind == KindProperties:
			if mc.Custom == nil && mc.Form == nil {
				t.Fatal("properties record without values")
			}
			for _, vals := range []struct {
				m      map[string]json.RawMessage
				lookup func(string, string) (*rule.Schema, bool)
			}{{mc.Custom, d.Property}, {mc.Form, d.Question}} {
				for id, v := range vals.m {
					if v == nil {
						continue
					}
					if s, ok := vals.lookup(mc.Spot, id); ok {
						if err := s.Fits(v); err != nil {
							t.Fatalf("%s %s=%s accepted: %v", s.Kind, id, v, err)
						}
					}
				}
			}
		default:
			t.Fatalf("kind %q decoded", mc.Kind)
		}

		// Round trip: the change re-encoded decodes to the same change.
		rec2 := Record{Kind: rec.Kind, Topic: "t", Key: rec.Key, Value: encodeChange(mc)}
		if len(rec2.Value) > lim.MaxRecordBytes {
			return
		}
		mc2, rerr := DecodeMember(rec2, lim, d)
		if rerr != nil {
			t.Fatalf("re-encoded %s: %v", rec2.Value, rerr)
		}
		if mc2.Spot != mc.Spot || mc2.Member != mc.Member || mc2.TS != mc.TS || mc2.Erase != mc.Erase || mc2.Unknown != 0 {
			t.Fatalf("round trip changed the envelope: %+v vs %+v", mc, mc2)
		}
		switch {
		case mc.Erase:
		case mc.Kind == KindProfiles:
			var p1, p2 rule.Profile
			mc.Profile.Apply(&p1)
			mc2.Profile.Apply(&p2)
			b1, _ := json.Marshal(p1)
			b2, _ := json.Marshal(p2)
			if !bytes.Equal(b1, b2) {
				t.Fatalf("round trip changed the profile: %s vs %s", b1, b2)
			}
		case mc.Kind == KindActivities:
			if *mc.Activity != *mc2.Activity {
				t.Fatalf("round trip changed the activity: %+v vs %+v", mc.Activity, mc2.Activity)
			}
		case mc.Kind == KindProperties:
			c1, c2 := compactMap(mc.Custom), compactMap(mc2.Custom)
			f1, f2 := compactMap(mc.Form), compactMap(mc2.Form)
			if !equalStringMaps(c1, c2) || !equalStringMaps(f1, f2) {
				t.Fatalf("round trip changed the values: %v %v vs %v %v", c1, f1, c2, f2)
			}
		}
	})
}

func equalStringMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

func FuzzDecodeDefinition(f *testing.F) {
	lim := DefaultLimits()
	f.Fuzz(func(t *testing.T, key string, value []byte, null bool) {
		rec := Record{Kind: KindDefinitions, Topic: "definitions", Key: []byte(key), Value: value}
		if null {
			rec.Value = nil
		} else if rec.Value == nil {
			rec.Value = []byte{}
		}
		dc, rerr := DecodeDefinition(rec, lim)
		if (dc == nil) == (rerr == nil) {
			t.Fatalf("exactly one of change and error: %v %v", dc, rerr)
		}
		if rerr != nil {
			if rerr.Code == "" || rerr.Reason == "" {
				t.Fatalf("error without code or reason: %#v", rerr)
			}
			return
		}
		want := dc.Spot + "/" + dc.Kind + "/" + dc.ID
		if dc.Kind == "blacklist" {
			want += "/" + dc.Member
		}
		if want != key {
			t.Fatalf("key %q decoded as %q", key, want)
		}
		if err := rule.CheckKeyID("spot", dc.Spot); err != nil {
			t.Fatal(err)
		}
		if dc.Delete != null {
			t.Fatalf("delete %v for null %v", dc.Delete, null)
		}
		switch dc.Kind {
		case "group":
			if err := rule.CheckKeyID("group id", dc.ID); err != nil {
				t.Fatal(err)
			}
			if !dc.Delete {
				g := dc.Group
				if g == nil || g.ID != dc.ID || g.Spot != dc.Spot || (g.Type != GroupSmart && g.Type != GroupStatic) || strings.TrimSpace(g.Name) == "" {
					t.Fatalf("group %+v", g)
				}
				if (g.Type == GroupSmart) != (g.Rule != nil) {
					t.Fatalf("%s group with rule %s", g.Type, g.Rule)
				}
			}
		case "property", "question":
			if !dc.Delete {
				s := dc.Schema
				if s == nil || s.ID != dc.ID || s.Kind != dc.Kind || !s.Type.Valid() || s.Type.Select() != (len(s.Options) > 0) {
					t.Fatalf("schema %+v", s)
				}
				for _, o := range s.Options {
					if !s.HasOption(o.ID) {
						t.Fatalf("option %q not indexed", o.ID)
					}
				}
			}
		case "blacklist":
			if err := rule.CheckID("member", dc.Member); err != nil {
				t.Fatal(err)
			}
			if !dc.Delete && (dc.Blacklist == nil || dc.Blacklist.Group != dc.ID || dc.Blacklist.Member != dc.Member) {
				t.Fatalf("blacklist %+v", dc.Blacklist)
			}
		default:
			t.Fatalf("kind %q", dc.Kind)
		}

		// Round trip of the decoded definition.
		if !dc.Delete {
			var v any = dc.Blacklist
			switch {
			case dc.Group != nil:
				v = dc.Group
			case dc.Schema != nil:
				v = dc.Schema
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) <= lim.MaxRecordBytes {
				dc2, rerr := DecodeDefinition(Record{Kind: KindDefinitions, Key: rec.Key, Value: b}, lim)
				if rerr != nil {
					t.Fatalf("re-encoded %s: %v", b, rerr)
				}
				b2, _ := json.Marshal(map[string]any{"g": dc2.Group, "s": dc2.Schema, "b": dc2.Blacklist})
				b1, _ := json.Marshal(map[string]any{"g": dc.Group, "s": dc.Schema, "b": dc.Blacklist})
				if !bytes.Equal(b1, b2) {
					t.Fatalf("round trip changed the definition: %s vs %s", b1, b2)
				}
			}
		}

		// Checking and applying it against real definitions never panics
		// and leaves them consistent.
		d := checkDefs(t)
		if d.Check(dc) != nil {
			return
		}
		d.Apply(dc)
		sd := d.Spot(dc.Spot)
		smartGroups := 0
		for id, g := range sd.Groups {
			if g.Type == GroupSmart {
				smartGroups++
				if g.compiled == nil {
					t.Fatalf("smart group %s without a compiled rule", id)
				}
				if _, ok := sd.Rank(id); !ok {
					t.Fatalf("smart group %s not in order %v", id, sd.Order())
				}
			}
		}
		if len(sd.Order()) != smartGroups {
			t.Fatalf("order %v of %d smart groups", sd.Order(), smartGroups)
		}
		for _, id := range sd.Order() {
			for _, dep := range sd.Groups[id].compiled.Groups {
				if r, ok := sd.Rank(dep); ok && r >= sd.rank[id] {
					t.Fatalf("%s ranks before its dependency %s", id, dep)
				}
			}
		}
	})
}
