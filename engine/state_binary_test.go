package engine

import (
	"reflect"
	"testing"
)

// FuzzBinaryMemberState checks the binary member-state codec: decoding
// arbitrary bytes never panics, and a decoded state encodes to bytes that
// decode to the same state and encode to the same bytes again. Run it
// with, for example:
//
//	go test ./engine -run '^$' -fuzz FuzzBinaryMemberState -fuzztime 60s
func FuzzBinaryMemberState(f *testing.F) {
	for _, st := range sampleStates() {
		b, err := EncodeMemberState(st)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{binaryStateVersion})
	f.Add([]byte{binaryStateVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		data = append([]byte{binaryStateVersion}, data...)
		st, err := DecodeMemberState(data)
		if err != nil {
			return
		}
		enc, err := EncodeMemberState(st)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeMemberState(enc)
		if err != nil {
			t.Fatalf("%q: re-encoded state %q does not decode: %v", data, enc, err)
		}
		if !reflect.DeepEqual(again, st) {
			t.Fatalf("%q: decode(encode(st)) = %+v, want %+v", data, again, st)
		}
		if enc2, _ := EncodeMemberState(again); string(enc2) != string(enc) {
			t.Fatalf("%q: encoding not stable: %q then %q", data, enc, enc2)
		}
		// The engine's in-place decoder reads the same state.
		var buf stateBuf
		if err := buf.decode(enc); err != nil {
			t.Fatalf("%q: in-place decode: %v", enc, err)
		}
		var re stateEncoder
		if got := re.append(nil, &buf.st, buf.seqs); string(got) != string(enc) {
			t.Fatalf("%q: in-place decode re-encodes to %q", enc, got)
		}
	})
}

// TestBinaryStateDecodeAllocs checks that decoding a member state into a
// reused buffer, as the record path does, allocates at most 3 times.
func TestBinaryStateDecodeAllocs(t *testing.T) {
	st := benchState()
	data, err := EncodeMemberState(st)
	if err != nil {
		t.Fatal(err)
	}
	var buf stateBuf
	if err := buf.decode(data); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := buf.decode(data); err != nil {
			t.Fatal(err)
		}
	}); n > 3 {
		t.Fatalf("%v allocations per decode, want at most 3", n)
	}
	if len(buf.st.Groups) != len(st.Groups) || len(buf.seqs) != len(st.Seqs) || len(buf.st.Custom) != len(st.Custom) {
		t.Fatalf("decoded %d groups, %d seqs, %d custom values; want %d, %d, %d",
			len(buf.st.Groups), len(buf.seqs), len(buf.st.Custom), len(st.Groups), len(st.Seqs), len(st.Custom))
	}
}

// BenchmarkBinaryMemberState measures what touching a member costs in
// codec work: decoding its binary state into a reused buffer, and encoding
// it again at commit.
func BenchmarkBinaryMemberState(b *testing.B) {
	st := benchState()
	data, err := EncodeMemberState(st)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d bytes (JSON: %d)", len(data), len(appendMemberState(nil, st)))
	var buf stateBuf
	b.Run("op=decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := buf.decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=encode", func(b *testing.B) {
		if err := buf.decode(data); err != nil {
			b.Fatal(err)
		}
		var enc stateEncoder
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			_ = enc.append(make([]byte, 0, len(data)+64), &buf.st, buf.seqs)
		}
	})
}

// TestBinaryStateAccess checks that access seqs survive the binary codec,
// both through MemberState and through the in-place decoder, and that a
// state without them keeps its earlier encoding.
func TestBinaryStateAccess(t *testing.T) {
	st := &MemberState{ID: "u1", Groups: []string{"g1"}, Seqs: map[string]uint64{"g1": 1},
		Access: map[string]uint64{"live-1": 1, "course-2": 4}}
	enc, err := EncodeMemberState(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMemberState(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("decode(encode(st)) = %+v, want %+v", got, st)
	}
	var buf stateBuf
	if err := buf.decode(enc); err != nil {
		t.Fatal(err)
	}
	want := []groupSeq{{group: "course-2", seq: 4}, {group: "live-1", seq: 1}}
	if !reflect.DeepEqual(buf.st.accessSeqs, want) {
		t.Fatalf("in-place access seqs %v, want %v", buf.st.accessSeqs, want)
	}
	st.Access = nil
	plain, err := EncodeMemberState(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := buf.decode(plain); err != nil || buf.st.accessSeqs != nil {
		t.Fatalf("state without access: %v, access %v", err, buf.st.accessSeqs)
	}
	if len(plain) >= len(enc) {
		t.Fatalf("a state without access encodes to %d bytes, with access %d", len(plain), len(enc))
	}
}
