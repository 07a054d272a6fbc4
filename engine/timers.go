package engine

import (
	"github.com/smartgroups/smartgroups/engine/rule"
)

// advance moves now forward and fires every timer due by then, in due
// order, through the same transaction as the records.
func (t *txn) advance(now rule.Millis) error {
	if now < t.e.now {
		return nil
	}
	if now > t.e.now {
		t.e.now = now
		t.nowDirty = true
	}
	savedReason, savedTS := t.reason, t.ts
	defer func() { t.reason, t.ts = savedReason, savedTS }()
	t.reason, t.ts = ReasonTime, now
	for _, p := range t.e.ownedSorted() {
		ps, err := t.partState(p)
		if err != nil {
			return err
		}
		limit := -1
		if max := t.e.cfg.MaxTimersPerBatch; max > 0 {
			if limit = max - t.fired; limit <= 0 {
				break
			}
		}
		// Timers set while these fire are due after now.
		t.due = ps.popDue(now, t.due[:0], limit)
		t.fired += len(t.due)
		for _, d := range t.due {
			spot := ps.spotList[d.spot].name
			t.e.timers.Add(-1)
			t.e.metrics.TimersFired.Inc()
			m, err := t.memberByOrd(p, spot, d.ord)
			if err != nil {
				return err
			}
			if m == nil {
				continue
			}
			m.st.Timer = nil
			m.dirty = true
			sd := t.e.defs.Spot(spot)
			if sd == nil {
				continue
			}
			if err := t.fire(m, sd, d.due); err != nil {
				return err
			}
		}
	}
	return t.flushAccess()
}

// noteTimerLag records how far the earliest pending timer of the owned
// partitions is behind now (0: none is due), once per committed batch.
// Called under e.mu.
func (e *Engine) noteTimerLag(now rule.Millis) {
	lag := int64(0)
	for p := range e.owned {
		if ps := e.parts[p]; ps != nil {
			if x, ok := ps.next(); ok && x.due <= now {
				lag = max(lag, now-x.due)
			}
		}
	}
	e.timerLag.Store(lag)
}

const maxMillis = int64(^uint64(0) >> 1)

// fire re-evaluates a member whose timer, set for due, fired at the
// current instant: only the time-dependent groups with a trigger that
// changes value between due and now (and the groups depending on one that
// flips), then sets the next timer from the same triggers.
//
// The timer is always at or before the next change of every
// time-dependent trigger after its group was last evaluated
// (rescheduleTimer takes the minimum over all of them, and every change
// to the member's data re-evaluates the groups it concerns and moves the
// timer earlier when it brings a change before it), so a group without a
// change in [due, now] has the value it had: evaluating it again would
// change nothing. A trigger's changes depend on the member's data only,
// which firing does not change (a flip changes memberships, and a group
// trigger never changes with time), so the next changes after now found
// here are the next timer's.
func (t *txn) fire(m *member, sd *SpotDefs, due rule.Millis) error {
	if !m.eligible() {
		return t.reevaluate(m, sd, sd.timeGroups)
	}
	now := t.e.now
	next := maxMillis
	groups := t.dueGroups[:0]
	for _, g := range sd.timeGroups {
		r := sd.Groups[g].compiled
		at, ok, err := r.NextFlip(m, due-1)
		if err != nil {
			return err
		}
		if ok && at <= now {
			groups = append(groups, g)
			// Its next instant after now, for the timer.
			if at, ok, err = r.NextFlip(m, now); err != nil {
				return err
			}
		}
		if ok && at < next {
			next = at
		}
	}
	t.dueGroups = groups
	if len(groups) > 0 {
		if _, err := t.evaluateGroups(m, sd, groups); err != nil {
			return err
		}
	}
	if next == maxMillis {
		return t.setTimer(m, nil)
	}
	return t.setTimer(m, &next)
}

// rescheduleTimer sets the member's single timer to the earliest instant
// after now at which a time-dependent group's rule can change value for
// them, or removes it when there is none.
func (t *txn) rescheduleTimer(m *member, sd *SpotDefs) error {
	var next *rule.Millis
	if m.eligible() {
		best := maxMillis
		for _, g := range sd.timeGroups {
			at, ok, err := sd.Groups[g].compiled.NextFlip(m, t.e.now)
			if err != nil {
				return err
			}
			if ok && at < best {
				best = at
			}
		}
		if best != maxMillis {
			next = &best
		}
	}
	return t.setTimer(m, next)
}

// setTimer replaces the member's timer (nil: none). The timer is part of
// the member's state, which a load reads to rebuild the partition's timer
// queue: nothing else is stored for it.
func (t *txn) setTimer(m *member, next *rule.Millis) error {
	cur := m.st.Timer
	if (cur == nil && next == nil) || (cur != nil && next != nil && *cur == *next) {
		return nil
	}
	if cur != nil {
		t.e.timers.Add(-1)
	}
	due := rule.Millis(noTimer)
	if next != nil {
		t.e.timers.Add(1)
		due = *next
		next = &m.buf.ins[timerInstant]
		*next = due
	}
	ps, err := t.partState(m.part)
	if err != nil {
		return err
	}
	ps.setTimer(m.ss, m.ord, due)
	m.st.Timer = next
	m.dirty = true
	return nil
}

// rescheduleAfterActivity moves the member's timer earlier when a new
// activity brings a trigger's next flip before it. A new activity changes
// the flips of the activity triggers on its type and of the date triggers
// on last_activity_at only: their next flips are computed again, the
// others' are at or after the current timer. A flip the activity moved
// later at most makes the timer fire early, and firing recomputes it.
func (t *txn) rescheduleAfterActivity(m *member, sd *SpotDefs, a *rule.Activity) error {
	if !m.eligible() {
		return t.rescheduleTimer(m, sd)
	}
	best := maxMillis
	if m.st.Timer != nil {
		best = *m.st.Timer
	}
	consider := func(n *rule.Node) error {
		at, ok, err := rule.LeafNextFlip(n, m, t.e.now)
		if err == nil && ok && at < best {
			best = at
		}
		return err
	}
	for _, n := range sd.timeActs[a.Type] {
		if err := consider(n); err != nil {
			return err
		}
	}
	if la, ok := m.LastActivity(); ok && la == a.TS {
		for _, n := range sd.timeLastAct {
			if err := consider(n); err != nil {
				return err
			}
		}
	}
	if best == maxMillis || (m.st.Timer != nil && best == *m.st.Timer) {
		return nil
	}
	return t.setTimer(m, &best)
}
