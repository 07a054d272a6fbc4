package bench

import (
	"bufio"
	"io"

	"github.com/smartgroups/smartgroups/connectors/file"
)

// Dataset counts what WriteDataset wrote.
type Dataset struct {
	Definitions int // definitions records
	LoadRecords int // initial load: one profile and one properties record per member, then the history
	History     int // of LoadRecords, the records of the history before the live stream
	LiveRecords int // live stream
}

// WriteDataset writes the whole input in file-mode NDJSON: definitions and
// the initial load to load, then the live stream to live.
func (c *Community) WriteDataset(load, live io.Writer) (Dataset, error) {
	var ds Dataset
	lw, vw := bufio.NewWriterSize(load, 1<<20), bufio.NewWriterSize(live, 1<<20)
	var line []byte
	write := func(w *bufio.Writer, r Record) error {
		var err error
		if line, err = (file.Line{Topic: string(r.Kind), Key: &r.Key, Value: r.Value}).AppendJSON(line[:0]); err != nil {
			return err
		}
		_, err = w.Write(append(line, '\n'))
		return err
	}
	for _, r := range c.Definitions() {
		if err := write(lw, r); err != nil {
			return ds, err
		}
		ds.Definitions++
	}
	for s := range c.spots {
		for i := 0; i < c.perSpot[s]; i++ {
			p, q := c.Initial(s, i)
			if err := write(lw, p); err != nil {
				return ds, err
			}
			if err := write(lw, q); err != nil {
				return ds, err
			}
			ds.LoadRecords += 2
		}
	}
	for n := c.HistoryRecords(); n > 0; n-- {
		if err := write(lw, c.NextHistory()); err != nil {
			return ds, err
		}
		ds.LoadRecords++
		ds.History++
	}
	for n := 0; n < c.cfg.Events; n++ {
		if err := write(vw, c.NextLive()); err != nil {
			return ds, err
		}
		ds.LiveRecords++
	}
	if err := lw.Flush(); err != nil {
		return ds, err
	}
	return ds, vw.Flush()
}
