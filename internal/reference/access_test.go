package reference

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func groupWith(spot, id, typ, rule, resources string) in {
	r := ""
	if rule != "" {
		r = `,"rule":` + rule
	}
	return in{"definitions", spot + "/group/" + id,
		fmt.Sprintf(`{"kind":"group","spot":%q,"id":%q,"type":%q,"name":"G %s"%s,"resources":%s}`, spot, id, typ, id, r, resources)}
}

// TestAccessSharedResource: a member leaving one of two groups that list
// the same resource keeps access; leaving both, or the static group's
// list dropping it, ends it.
func TestAccessSharedResource(t *testing.T) {
	live := `[{"id":"live-1","type":"live","title":"AMA"}]`
	m := New(0, false)
	run(t, m, []in{
		groupWith("s", "vips", "smart", `{"field":"profile.tags","op":"has_any","value":["vip"]}`, live),
		groupWith("s", "gold", "smart", `{"field":"profile.tags","op":"has_any","value":["gold"]}`, live),
		groupWith("s", "st", "static", "", live),
		profile("s", "u1", `{"status":"accepted","tags":["vip","gold"]}`),
		profile("s", "u2", `{"static_groups":["st"]}`),
		profile("s", "u3", `{"status":"deactivated","tags":["vip"],"static_groups":["st2"]}`),
	})
	noDeadLetters(t, m)
	require.Equal(t, map[string][]string{"s/live-1/u1": {"gold", "vips"}, "s/live-1/u2": {"st"}}, m.Access())
	run(t, m, []in{profile("s", "u1", `{"tags":["gold"]}`)})
	require.Equal(t, map[string][]string{"s/live-1/u1": {"gold"}, "s/live-1/u2": {"st"}}, m.Access())
	run(t, m, []in{profile("s", "u1", `{"tags":[]}`), groupWith("s", "st", "static", "", `[]`)})
	require.Empty(t, m.Access())
}
