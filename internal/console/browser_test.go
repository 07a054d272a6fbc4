package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/internal/demo"
	"github.com/smartgroups/smartgroups/internal/httpapi"
	"github.com/smartgroups/smartgroups/internal/serve"
)

const (
	adminToken = "admin-token-0123456789"
	acmeToken  = "acme-token-0123456789"
)

// findChromium returns the path of a Chromium (or Chrome) binary, or "".
func findChromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotDir is where the test keeps its screenshots:
// $SMARTGROUPS_SCREENSHOTS, or a directory of the test.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("SMARTGROUPS_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots are written to %s", dir)
	return dir
}

// startServe runs a real serve (embedded broker, Pebble, HTTP) with an
// admin token and a spot token, fed with a small demo community.
func startServe(t *testing.T) string {
	base, _ := startServeBrokers(t)
	return base
}

// startServeBrokers is startServe that also returns the broker addresses.
func startServeBrokers(t *testing.T) (string, []string) {
	t.Helper()
	cfg := serve.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.EmbeddedAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Kafka.Partitions = 2
	cfg.SizeInterval = 200 * time.Millisecond // points at once, not after a minute
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.APIToken = adminToken
	cfg.SpotTokens = []httpapi.SpotToken{{Spot: "acme", Token: acmeToken}}
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan serve.Ready, 1)
	done := make(chan error, 1)
	cfg.OnReady = func(r serve.Ready) { readyc <- r }
	go func() { done <- serve.Run(ctx, cfg) }()
	var ready serve.Ready
	select {
	case ready = <-readyc:
	case err := <-done:
		t.Fatalf("serve exited before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve not ready after 60s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(ready.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	g := demo.New(demo.Config{Spots: []string{"acme", "globex"}, Members: 300, Seed: 7})
	for _, recs := range [][]demo.Record{g.Definitions(), g.Members(time.Now())} {
		krecs := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			krecs[i] = &kgo.Record{Topic: cfg.Kafka.TopicPrefix + string(r.Kind), Key: []byte(r.Key), Value: r.Value}
		}
		if err := cl.ProduceSync(context.Background(), krecs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	base := "http://" + ready.HTTPAddr
	// The community is in once the paying teams have members.
	waitUntil(t, func() bool {
		var g struct {
			MemberCount int `json:"member_count"`
		}
		return apiJSON(t, base, http.MethodGet, "/v1/spots/acme/groups/paying-teams", nil, &g) == 200 && g.MemberCount > 0
	})
	return base, ready.Brokers
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a count", s)
	}
	return n
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 60s")
}

func apiJSON(t *testing.T, base, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return res.StatusCode
}

// browser drives one Chromium tab.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
	n    int
}

func newBrowser(t *testing.T, chromium, base, dir string) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	b := &browser{t: t, ctx: ctx, base: base, dir: dir}
	// The first action starts the browser, whose life is that of the
	// context it runs with: run it with the tab's own context.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	return b
}

func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(err)
	}
}

func (b *browser) fail(err error) {
	b.t.Helper()
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	b.shot("failure")
	b.t.Fatalf("browser at %s: %v", loc, err)
}

// shot saves a full-page screenshot named after the step.
func (b *browser) shot(name string) string {
	b.n++
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail(fmt.Errorf("%s: %w", expr, err))
	}
	return v
}

// text returns the text of the first element matching sel ("" when none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%q)||{}).innerText||""`, sel))
}

// location is the page's URL.
func (b *browser) location() string {
	b.t.Helper()
	return eval[string](b, `location.href`)
}

// wait waits until a JavaScript condition holds.
func (b *browser) wait(cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(30*time.Second)))
		if err == nil {
			return
		}
		// A navigation replaced the page while polling: poll the new one.
		if ctx.Err() == nil && (strings.Contains(err.Error(), "Cannot find context") || strings.Contains(err.Error(), "context was destroyed")) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		b.fail(fmt.Errorf("waiting for %s: %w", cond, err))
	}
}

// choose selects an option of a select and fires change, as a user does.
func (b *browser) choose(sel, value string) {
	b.t.Helper()
	eval[chromedp.Void](b, fmt.Sprintf(`(function(){var s=document.querySelector(%q); s.value=%q; s.dispatchEvent(new Event("change",{bubbles:true}));})()`, sel, value))
}

// click clicks the first element matching sel (a CSS selector) with the
// mouse and waits for the page to settle (htmx swaps and navigations).
func (b *browser) click(sel string) {
	b.t.Helper()
	b.run(chromedp.Click(chromedp.CSS(sel)))
	b.settle()
}

// typeIn types text into the field matching sel.
func (b *browser) typeIn(sel, text string) {
	b.t.Helper()
	b.run(chromedp.SendKeys(chromedp.CSS(sel), text))
}

// settle waits until no htmx request is in flight and the document loaded.
func (b *browser) settle() {
	b.t.Helper()
	time.Sleep(200 * time.Millisecond)
	b.wait(`document.readyState === "complete" && !document.querySelector(".htmx-request")`)
}

func TestConsoleInBrowser(t *testing.T) {
	chromium := findChromium()
	if chromium == "" {
		t.Skip("no chromium found (install the Debian package chromium: scripts/install-chromium.sh; or set CHROMIUM to a Chrome binary)")
	}
	base, brokers := startServeBrokers(t)
	dir := screenshotDir(t)
	b := newBrowser(t, chromium, base, dir)

	// Sign in: without a session, the console asks for a token.
	b.run(chromedp.Navigate(base + "/"))
	b.wait(`location.pathname === "/login"`)
	b.typeIn("#token", "not-a-token")
	b.click(`form button[type=submit]`)
	if got := b.text("#token-error"); !strings.Contains(got, "not valid") {
		t.Fatalf("a wrong token: error %q", got)
	}
	b.shot("sign-in-refused")
	b.run(chromedp.SetValue(chromedp.CSS("#token"), adminToken))
	b.click(`form button[type=submit]`)
	b.wait(`location.pathname === "/"`)

	// The landing page: the groups of every spot, with member counts and
	// a size sparkline.
	b.wait(`document.querySelectorAll("section.spot").length === 2`)
	b.wait(`Array.from(document.querySelectorAll("img.spark")).every(i => i.complete && i.naturalWidth > 0)`)
	count := b.text(`section[data-spot=acme] [data-count="paying-teams"]`)
	if count == "" || count == "0" {
		t.Fatalf("paying-teams shows %q members", count)
	}
	cookie := eval[string](b, `document.cookie`)
	if strings.Contains(cookie, "sg_session") {
		t.Fatalf("the session cookie is readable by scripts: %q", cookie)
	}
	b.shot("groups")

	// Create a smart group with two conditions through the builder.
	b.click(`section[data-spot=acme] a.button.primary`)
	b.wait(`!!document.querySelector("#editor")`)
	b.typeIn("#name", "Pro VIPs")
	// Condition 1: profile tags has any of vip. A selector that changes
	// the trigger's shape re-renders the builder; the keyboard focus stays
	// on it.
	b.choose("#c0-t0-kind", "profile")
	b.settle()
	eval[chromedp.Void](b, `document.querySelector("#c0-t0-field").focus()`)
	b.choose("#c0-t0-field", "email")
	b.settle()
	if got := eval[string](b, `document.activeElement && document.activeElement.id`); got != "c0-t0-field" {
		t.Fatalf("after the builder re-rendered, the focus is on %q, not on the field selector", got)
	}
	if got := eval[string](b, `document.querySelector("#c0-t0-op").value`); got != "eq" {
		t.Fatalf("a string field offers %q first, want eq", got)
	}
	b.choose("#c0-t0-field", "tags")
	b.settle()
	if got := eval[string](b, `document.querySelector("#c0-t0-op").value`); got != "has_any" {
		t.Fatalf("tags offer %q first, want has_any", got)
	}
	b.typeIn("#c0-t0-value", "vip")
	// Condition 2: custom property plan is one of Pro, Enterprise.
	b.click(`button[value="add-condition"]`)
	b.wait(`!!document.querySelector("#c1-t0-kind")`)
	b.choose("#c1-t0-kind", "custom")
	b.settle()
	b.choose("#c1-t0-field", "plan")
	b.settle()
	b.click(`input[name="c1.t0.values"][value="pro"]`)
	b.click(`input[name="c1.t0.values"][value="enterprise"]`)
	// A trigger with an empty value list: the API's 400 shows under it.
	b.click(`button[value="add:1"]`)
	b.choose("#c1-t1-field", "first_name")
	b.settle()
	b.choose("#c1-t1-op", "in")
	b.settle()
	b.click(`button[value="preview"]`)
	b.wait(`!!document.querySelector("#c1-t1-error")`)
	if msg := b.text(`#c1-t1-box .error`); msg == "" {
		t.Fatal("the error of the empty value list is not under its trigger")
	}
	if b.text(`#c0-t0-box .error`) != "" {
		t.Fatal("an error shows under a trigger it does not concern")
	}
	b.shot("builder-error-under-trigger")
	// X removes the trigger.
	b.click(`button[value="remove:1:1"]`)
	b.wait(`!document.querySelector("#c1-t1-kind")`)
	b.shot("builder")

	// Save: the preview.
	b.click(`button[value="preview"]`)
	b.wait(`!!document.querySelector("#preview")`)
	var want struct {
		Count int `json:"count"`
	}
	rule := map[string]any{"all": []any{
		map[string]any{"all": []any{map[string]any{"field": "profile.tags", "op": "has_any", "value": []string{"vip"}}}},
		map[string]any{"all": []any{map[string]any{"field": "custom.plan", "op": "in", "value": []string{"pro", "enterprise"}}}},
	}}
	apiJSON(t, base, http.MethodPost, "/v1/spots/acme/groups/preview", map[string]any{"rule": rule}, &want)
	if want.Count < 2 {
		t.Fatalf("the test community has %d pro VIPs; it needs two", want.Count)
	}
	if got := b.text("#preview-count"); got != fmt.Sprint(want.Count) {
		t.Fatalf("preview count %s, the API says %d", got, want.Count)
	}
	b.shot("preview")
	// Blacklist the first member of the preview.
	blocked := eval[string](b, `document.querySelector('#preview button[value^="blacklist:"]').value.slice(10)`)
	b.click(`#preview button[value^="blacklist:"]`)
	b.wait(fmt.Sprintf(`document.querySelector("#preview-count").innerText === "%d"`, want.Count-1))
	b.shot("preview-blacklisted")
	// Back to editing keeps the conditions.
	b.click(`button[value="back"]`)
	b.wait(`!document.querySelector("#preview") && !!document.querySelector("#c1-t0-field")`)
	checked := eval[bool](b, `document.querySelector('input[name="c1.t0.values"][value="pro"]').checked`)
	if !checked {
		t.Fatal("back to editing lost the chosen options")
	}
	b.click(`button[value="preview"]`)
	b.wait(`!!document.querySelector("#preview")`)
	b.click(`button[value="create"]`)
	b.wait(`location.pathname.startsWith("/spots/acme/groups/g-")`)
	loc := b.location()
	id := strings.TrimPrefix(strings.SplitN(loc, "?", 2)[0], base+"/spots/acme/groups/")
	var created struct {
		MemberCount int `json:"member_count"`
	}
	apiJSON(t, base, http.MethodGet, "/v1/spots/acme/groups/"+id, nil, &created)
	if created.MemberCount != want.Count-1 {
		t.Fatalf("created group has %d members, want %d (the preview minus the blacklisted one)", created.MemberCount, want.Count-1)
	}
	b.shot("group-general")

	// Members: alphabetical, without the blacklisted member; filters.
	b.click(`nav.tabs a[href$="/members"]`)
	b.wait(`!!document.querySelector("#members")`)
	names := eval[[]string](b, `Array.from(document.querySelectorAll("#members li a.name")).map(a => a.getAttribute("href").split("/").pop())`)
	if len(names) != created.MemberCount {
		t.Fatalf("members tab lists %d members, want %d", len(names), created.MemberCount)
	}
	for _, m := range names {
		if m == blocked {
			t.Fatalf("blacklisted member %s is listed", blocked)
		}
	}
	b.shot("members")
	b.click(`.filters summary`)
	b.choose("#status", "invited")
	b.click(`.filters button[type=submit]`)
	statusesShown := eval[[]string](b, `Array.from(document.querySelectorAll("#members li .badge:last-of-type")).map(e => e.innerText)`)
	for _, s := range statusesShown {
		if s != "invited" {
			t.Fatalf("status filter invited shows a member %q", s)
		}
	}
	b.shot("members-filtered")
	b.click(`#show-blacklist`)
	if got := b.text("#blacklist"); !strings.Contains(got, blocked) {
		t.Fatalf("blacklisted members panel: %q, want %s", got, blocked)
	}
	b.shot("blacklisted-members")

	// Edit the conditions: add the free plan; the diff shows who is added.
	b.run(chromedp.Navigate(base + "/spots/acme/groups/" + id + "/conditions"))
	b.wait(`!!document.querySelector('input[name="c1.t0.values"][value="free"]')`)
	b.click(`input[name="c1.t0.values"][value="free"]`)
	b.click(`button[value="update"]`)
	b.wait(`!!document.querySelector("#diff")`)
	var dry struct {
		AddedCount   int `json:"added_count"`
		RemovedCount int `json:"removed_count"`
	}
	rule["all"].([]any)[1] = map[string]any{"all": []any{map[string]any{"field": "custom.plan", "op": "in", "value": []string{"pro", "enterprise", "free"}}}}
	apiJSON(t, base, http.MethodPatch, "/v1/spots/acme/groups/"+id+"?dry_run=true", map[string]any{"rule": rule}, &dry)
	if got := b.text("#diff-added"); got != fmt.Sprint(dry.AddedCount) || dry.AddedCount == 0 {
		t.Fatalf("diff shows %s added, the dry run %d", got, dry.AddedCount)
	}
	b.shot("conditions-diff")
	b.click(`button[value="confirm"]`)
	b.wait(`location.pathname === "/spots/acme/groups/` + id + `"`)
	if got := b.text(".flash"); !strings.Contains(got, "updated") {
		t.Fatalf("after confirming: %q", got)
	}
	apiJSON(t, base, http.MethodGet, "/v1/spots/acme/groups/"+id, nil, &created)
	if created.MemberCount != want.Count-1+dry.AddedCount {
		t.Fatalf("after the update the group has %d members, want %d", created.MemberCount, want.Count-1+dry.AddedCount)
	}

	// Explain a member: the rule tree with a value on every node.
	b.run(chromedp.Navigate(base + "/spots/acme/members/" + blocked + "?group=" + id))
	b.wait(`!!document.querySelector("#explain-tree")`)
	if v := b.text("#explain-verdict"); !strings.Contains(v, "Not in the group") || !strings.Contains(v, "blacklisted true") {
		t.Fatalf("explain of the blacklisted member: %q", v)
	}
	nodes := eval[int](b, `document.querySelectorAll("#explain-tree li").length`)
	valued := eval[int](b, `document.querySelectorAll("#explain-tree li > .yes, #explain-tree li > .no").length`)
	if nodes < 5 || nodes != valued {
		t.Fatalf("explain tree: %d nodes, %d with a value", nodes, valued)
	}
	b.shot("member-explain")

	// Delete refused: another group's conditions reference this one.
	apiJSON(t, base, http.MethodPost, "/v1/spots/acme/groups", map[string]any{"id": "pro-vips-in-fr", "type": "smart", "name": "Pro VIPs in French",
		"rule": map[string]any{"all": []any{map[string]any{"group": id}, map[string]any{"field": "profile.language", "op": "eq", "value": "fr"}}}}, nil)
	b.run(chromedp.Navigate(base + "/spots/acme/groups/" + id))
	b.click(`#delete`)
	b.click(`#confirm-delete`)
	b.wait(`!!document.querySelector("#refs")`)
	if got := b.text("#refs"); !strings.Contains(got, "Pro VIPs in French") {
		t.Fatalf("delete refused without naming the referencing group: %q", got)
	}
	if st := apiJSON(t, base, http.MethodGet, "/v1/spots/acme/groups/"+id, nil, nil); st != 200 {
		t.Fatalf("the group is gone after a refused delete: %d", st)
	}
	b.shot("delete-refused")

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	join := func(member string) {
		t.Helper()
		for _, r := range []struct{ topic, value string }{
			{"profiles", `{"spot":"acme","member":%q,"ts":%d,"profile":{"first_name":"Nina","last_name":"Newcomer","status":"accepted","tags":["vip"]}}`},
			{"properties", `{"spot":"acme","member":%q,"ts":%d,"custom":{"plan":"pro"}}`},
		} {
			rec := &kgo.Record{Topic: "smartgroups." + r.topic, Key: []byte("acme/" + member), Value: fmt.Appendf(nil, r.value, member, time.Now().UnixMilli())}
			if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The landing page's counts follow the engine without a reload.
	b.run(chromedp.Navigate(base + "/?spot=acme"))
	cell := fmt.Sprintf(`document.querySelector('section[data-spot=acme] [data-count=%q]')`, id)
	before := eval[string](b, cell+`.innerText`)
	eval[chromedp.Void](b, `window.notReloaded = true`)
	join("newcomer1")
	b.wait(fmt.Sprintf(`%s.innerText === "%d" && window.notReloaded === true`, cell, atoi(t, before)+1))

	// The live feed: a member who starts matching shows up as it happens.
	b.run(chromedp.Navigate(base + "/spots/acme/feed?group=" + id))
	b.wait(`document.querySelector("#feed-status").innerText === "Connected."`)
	join("newcomer2")
	b.wait(`Array.from(document.querySelectorAll("#feed li.add")).some(li => li.innerText.includes("newcomer2"))`)
	b.shot("live-feed")

	// The size tab draws the series with uPlot.
	b.run(chromedp.Navigate(base + "/spots/acme/groups/paying-teams/size"))
	b.wait(`!!document.querySelector("#size-chart canvas")`)
	b.shot("size")

	// Resources tab and a narrow screen.
	b.run(chromedp.Navigate(base + "/spots/acme/groups/paying-teams/resources?type=course"))
	if got := b.text(".members"); !strings.Contains(got, "Advanced course") || strings.Contains(got, "Playbooks") {
		t.Fatalf("resources filtered by type course: %q", got)
	}
	b.shot("resources")
	b.run(chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/?spot=acme"))
	b.settle()
	overflow := eval[bool](b, `document.documentElement.scrollWidth > window.innerWidth + 1`)
	if overflow {
		t.Error("the groups page scrolls sideways at 390 px")
	}
	b.shot("groups-390px")
	for _, page := range []string{"/spots/acme/groups/" + id + "/conditions", "/spots/acme/groups/paying-teams/members", "/spots/acme/members/" + blocked + "?group=" + id} {
		b.run(chromedp.Navigate(base + page))
		b.settle()
		if eval[bool](b, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
			t.Errorf("%s scrolls sideways at 390 px", page)
		}
	}
	b.shot("member-390px")
}
