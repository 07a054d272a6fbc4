package bench

import (
	"bufio"
	"encoding/json"
	"io"
)

// Line is one NDJSON input line of `smartgroups process`.
type Line struct {
	Topic string          `json:"topic"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// Dataset counts what WriteDataset wrote.
type Dataset struct {
	Definitions int // definitions records
	LoadRecords int // initial load: one profile and one properties record per member
	LiveRecords int // live stream
}

// WriteDataset writes the whole input in file-mode NDJSON: definitions and
// the initial load to load, then the live stream to live.
func (c *Community) WriteDataset(load, live io.Writer) (Dataset, error) {
	var ds Dataset
	lw, vw := bufio.NewWriterSize(load, 1<<20), bufio.NewWriterSize(live, 1<<20)
	le, ve := json.NewEncoder(lw), json.NewEncoder(vw)
	le.SetEscapeHTML(false)
	ve.SetEscapeHTML(false)
	write := func(enc *json.Encoder, r Record) error {
		return enc.Encode(Line{Topic: string(r.Kind), Key: r.Key, Value: r.Value})
	}
	for _, r := range c.Definitions() {
		if err := write(le, r); err != nil {
			return ds, err
		}
		ds.Definitions++
	}
	for s := range c.spots {
		for i := 0; i < c.perSpot[s]; i++ {
			p, q := c.Initial(s, i)
			if err := write(le, p); err != nil {
				return ds, err
			}
			if err := write(le, q); err != nil {
				return ds, err
			}
			ds.LoadRecords += 2
		}
	}
	for n := 0; n < c.cfg.Events; n++ {
		if err := write(ve, c.NextLive()); err != nil {
			return ds, err
		}
		ds.LiveRecords++
	}
	if err := lw.Flush(); err != nil {
		return ds, err
	}
	return ds, vw.Flush()
}
