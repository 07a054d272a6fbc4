package engine

// emptyGroup removes every member of a group in partition p.
func (t *txn) emptyGroup(p int32, spot, g string) error {
	bm, err := t.posting(p, spot, termSmartGroup(g))
	if err != nil {
		return err
	}
	it := bm.Clone().Iterator()
	for it.HasNext() {
		m, err := t.memberByOrd(p, spot, it.Next())
		if err != nil {
			return err
		}
		if m == nil || !m.InSmartGroup(g) {
			continue
		}
		if err := t.flip(m, g, false); err != nil {
			return err
		}
	}
	return nil
}

// backfill recomputes a group's members in partition p: the candidates are
// narrowed with posting lists wherever the rule allows, and only they (and
// the current members) are evaluated.
func (t *txn) backfill(p int32, sd *SpotDefs, g string) error {
	t.e.metrics.BackfillsRunning.Inc()
	defer t.e.metrics.BackfillsRunning.Dec()
	work, err := t.backfillSet(p, sd.Spot, sd.Groups[g].compiled)
	if err != nil {
		return err
	}
	cur, err := t.posting(p, sd.Spot, termSmartGroup(g))
	if err != nil {
		return err
	}
	work.Or(cur)
	it := work.Iterator()
	for it.HasNext() {
		m, err := t.memberByOrd(p, sd.Spot, it.Next())
		if err != nil {
			return err
		}
		if m == nil {
			continue
		}
		t.e.metrics.BackfillMembers.Inc()
		if err := t.reevaluate(m, sd, []string{g}); err != nil {
			return err
		}
		t.release(m)
	}
	return nil
}
