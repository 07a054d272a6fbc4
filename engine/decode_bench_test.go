package engine

import (
	"testing"
)

// BenchmarkDecodeMemberLegacy compares the decoder with the encoding/json
// one it replaced (decode_legacy_test.go) on records like those of the
// bench/ generator, in the same run:
//
//	go test ./engine -run '^$' -bench DecodeMemberLegacy -count 5
func BenchmarkDecodeMemberLegacy(b *testing.B) {
	d := testDefs(b)
	recs := []Record{
		memberRec(KindProfiles, "acme/m0000123", `{"spot":"acme","member":"m0000123","ts":"2026-11-20T09:00:00Z","profile":{"email":"Ada.Lovelace.123@corp007.com","first_name":"Ada","language":"en","last_activity_at":"2026-10-02T05:00:00Z","last_name":"Lovelace","registered_at":"2025-01-02T17:00:00Z","role":"member","status":"accepted","tags":["tag-003","tag-012"],"title":"Engineer","utm":{"campaign":"camp-07","medium":"cpc","source":"google"}}}`),
		memberRec(KindActivities, "acme/m0000123", `{"spot":"acme","member":"m0000123","ts":"2026-11-20T09:00:00.123Z","id":"evt-000123-0042","type":"attended_live","resource":{"id":"live-042","title":"Weekly AMA #42"}}`),
		memberRec(KindProperties, "acme/m0000123", `{"spot":"acme","member":"m0000123","ts":1795251600000,"custom":{"beta":true,"interests":["ai","go"],"plan":"pro","renewal":"2027-01-01T00:00:00Z","seats":12},"form":{"company_size":"11-50","goals":["learn"]}}`),
	}
	for _, rec := range recs {
		if _, err := DecodeMember(rec, DefaultLimits(), d); err != nil {
			b.Fatal(err)
		}
		for _, dec := range []struct {
			name string
			f    func(Record, Limits, SchemaLookup) (*MemberChange, *RecordError)
		}{{"legacy", legacyDecodeMember}, {"new", DecodeMember}} {
			b.Run(string(rec.Kind)+"/"+dec.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := dec.f(rec, DefaultLimits(), d); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
