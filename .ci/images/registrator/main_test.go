package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

// A container as compose runs web-service: SERVICE_3000_* keys, the port exposed by the image,
// on a user-defined network.
func testContainer() *Container {
	c := &Container{ID: "0123456789abcdef0123", Name: "/proj-web-1"}
	c.Config.Image = "local/node:24"
	c.Config.Env = []string{
		"PATH=/usr/bin", "SERVICE_3000_NAME=web", "SERVICE_CHECK_HTTP=/ignored", "SERVICE_3000_CHECK_HTTP=/health",
		"SERVICE_3000_CHECK_INTERVAL=1s", "SERVICE_3000_CHECK_TIMEOUT=1s", "SERVICE_9229_IGNORE=1", "SERVICE_4000_NAME=other",
	}
	c.Config.ExposedPorts = map[string]struct{}{"3000": {}, "9229/tcp": {}, "5353/udp": {}}
	c.NetworkSettings.Ports = map[string]json.RawMessage{"3000/tcp": nil}
	c.HostConfig.NetworkMode = "proj_mesh"
	c.NetworkSettings.Networks = map[string]endpoint{"proj_mesh": {IPAddress: "172.18.0.5"}}
	return c
}

func TestServiceMetadata(t *testing.T) {
	c := testContainer()
	meta, fromPort := serviceMetadata(c, "3000")
	want := map[string]string{"name": "web", "check_http": "/health", "check_interval": "1s", "check_timeout": "1s"}
	if !reflect.DeepEqual(meta, want) || !fromPort["name"] || !fromPort["check_http"] {
		t.Fatalf("meta %v fromPort %v", meta, fromPort)
	}
	if m, fp := serviceMetadata(c, "9229"); m["ignore"] != "1" || m["check_http"] != "/ignored" || fp["check_http"] {
		t.Fatalf("9229: %v %v", m, fp)
	}
}

func TestContainerPorts(t *testing.T) {
	// "3000" and "3000/tcp" are one port; UDP ports are not registered.
	if got := containerPorts(testContainer()); !reflect.DeepEqual(got, []string{"3000", "9229"}) {
		t.Fatal(got)
	}
}

func TestNewService(t *testing.T) {
	b := &bridge{hostname: "registrator"}
	c := testContainer()
	s := b.newService(c, "3000", true)
	if s == nil || s.ID != "registrator:proj-web-1:3000" || s.Name != "web" || s.IP != "172.18.0.5" || s.Port != 3000 {
		t.Fatalf("%+v", s)
	}
	ck := buildCheck(s)
	if ck == nil || *ck != (consulCheck{HTTP: "http://172.18.0.5:3000/health", Interval: "1s", Timeout: "1s"}) {
		t.Fatalf("%+v", ck)
	}
	if s := b.newService(c, "9229", true); s != nil {
		t.Fatalf("ignored port registered: %+v", s)
	}
	// No name for the port: the image's base name, "-<port>" when the container has several ports.
	c.Config.Env = []string{"SERVICE_CHECK_HTTP=/ping"}
	if s := b.newService(c, "3000", true); s.Name != "node-3000" || buildCheck(s).Interval != "10s" {
		t.Fatalf("%+v", s)
	}
	if s := b.newService(c, "3000", false); s.Name != "node" {
		t.Fatalf("%+v", s)
	}
	c.Config.Env = nil
	if s := b.newService(c, "3000", false); buildCheck(s) != nil {
		t.Fatalf("check without SERVICE_CHECK_HTTP: %+v", buildCheck(s))
	}
}

func TestServiceIgnore(t *testing.T) {
	c := testContainer()
	c.Config.Env = []string{"SERVICE_IGNORE=true"}
	if s := (&bridge{hostname: "registrator"}).newService(c, "3000", false); s != nil {
		t.Fatalf("%+v", s)
	}
}

// fakeConsul records the agent's services as registrator leaves them.
type fakeConsul struct {
	mu       sync.Mutex
	services map[string]string // ID → name
	checks   map[string]consulCheck
}

func (f *fakeConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/v1/agent/service/register":
		var reg consulRegistration
		if err := json.NewDecoder(r.Body).Decode(&reg); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f.services[reg.ID] = reg.Name
		if reg.Check != nil {
			f.checks[reg.ID] = *reg.Check
		}
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/agent/service/deregister/"):
		delete(f.services, strings.TrimPrefix(r.URL.Path, "/v1/agent/service/deregister/"))
	case r.Method == http.MethodGet && r.URL.Path == "/v1/agent/services":
		out := map[string]map[string]string{}
		for id, name := range f.services {
			out[id] = map[string]string{"ID": id, "Service": name}
		}
		_ = json.NewEncoder(w).Encode(out)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeConsul) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id := range f.services {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// What e2e test 7 relies on: a restarted registrator (-cleanup) registers the running containers
// and deregisters its own services whose container was removed while it was down, and nothing else.
func TestSyncAndCleanup(t *testing.T) {
	web := testContainer()
	ignored := &Container{ID: "consulserver000000000", Name: "/proj-consul-server-1-1"}
	ignored.Config.Env = []string{"SERVICE_IGNORE=true"}
	ignored.Config.ExposedPorts = map[string]struct{}{"8500/tcp": {}}
	containers := map[string]*Container{web.ID: web, ignored.ID: ignored}
	dockerSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/containers/json" {
			var out []listedContainer
			for id := range containers {
				out = append(out, listedContainer{ID: id})
			}
			_ = json.NewEncoder(w).Encode(out)
			return
		}
		if id, ok := strings.CutPrefix(r.URL.Path, "/containers/"); ok {
			if c := containers[strings.TrimSuffix(id, "/json")]; c != nil {
				_ = json.NewEncoder(w).Encode(c)
				return
			}
		}
		http.NotFound(w, r)
	}))
	defer dockerSrv.Close()
	consul := &fakeConsul{
		services: map[string]string{
			"registrator:proj-web-2:3000": "web",      // container removed while registrator was down
			"elsewhere:proj-web-9:3000":   "web",      // another registrator's: left alone
			"manual-1":                    "external", // not registrator's: left alone
		},
		checks: map[string]consulCheck{},
	}
	consulSrv := httptest.NewServer(consul)
	defer consulSrv.Close()

	*cleanup = true
	defer func() { *cleanup = false }()
	b := &bridge{
		docker:   &dockerClient{base: dockerSrv.URL, client: dockerSrv.Client(), stream: dockerSrv.Client()},
		registry: &consulClient{base: consulSrv.URL, client: consulSrv.Client()},
		hostname: "registrator",
		services: map[string][]*service{},
	}
	b.sync(false)
	want := []string{"elsewhere:proj-web-9:3000", "manual-1", "registrator:proj-web-1:3000"}
	if got := consul.ids(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after sync: %v", got)
	}
	if ck := consul.checks["registrator:proj-web-1:3000"]; ck.HTTP != "http://172.18.0.5:3000/health" {
		t.Fatalf("check %+v", ck)
	}

	// The container dies: its service goes.
	b.remove(web.ID)
	if got := consul.ids(); !reflect.DeepEqual(got, []string{"elsewhere:proj-web-9:3000", "manual-1"}) {
		t.Fatalf("after die: %v", got)
	}
}

func TestDockerHost(t *testing.T) {
	for _, ok := range []string{"unix:///tmp/docker.sock", "tcp://socket-proxy:2375"} {
		if _, err := newDockerClient(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "unix://", "tcp://", "tcp://socket-proxy", "http://x:1", "/tmp/docker.sock"} {
		if _, err := newDockerClient(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestConsulToken(t *testing.T) {
	files := map[string]string{"/run/tok": " file-token\n", "/run/empty": "\n"}
	read := func(p string) ([]byte, error) {
		if b, ok := files[p]; ok {
			return []byte(b), nil
		}
		return nil, errors.New("open " + p + ": no such file or directory")
	}
	cases := []struct {
		env     map[string]string
		want    string
		wantErr bool
	}{
		{env: map[string]string{}, want: ""},
		{env: map[string]string{"CONSUL_HTTP_TOKEN": "env-token"}, want: "env-token"},
		{env: map[string]string{"CONSUL_HTTP_TOKEN_FILE": "/run/tok"}, want: "file-token"},
		{env: map[string]string{"CONSUL_HTTP_TOKEN": "env-token", "CONSUL_HTTP_TOKEN_FILE": "/run/tok"}, want: "file-token"},
		{env: map[string]string{"CONSUL_HTTP_TOKEN": "env-token", "CONSUL_HTTP_TOKEN_FILE": "/run/empty"}, want: "env-token"},
		{env: map[string]string{"CONSUL_HTTP_TOKEN_FILE": "/run/missing"}, wantErr: true},
	}
	for _, c := range cases {
		got, err := consulToken(func(k string) string { return c.env[k] }, read)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("%v: got %q, %v", c.env, got, err)
		}
	}
}

// Every call to Consul carries the token.
func TestTokenSent(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("X-Consul-Token"))
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c := &consulClient{base: srv.URL, token: "s3cret", client: srv.Client()}
	if _, err := c.services(); err != nil {
		t.Fatal(err)
	}
	if err := c.deregister("x"); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != "s3cret" || seen[1] != "s3cret" {
		t.Fatalf("tokens sent: %q", seen)
	}
}

// consul-unix:///path reaches an agent on a Unix socket; other forms are refused.
func TestConsulUnix(t *testing.T) {
	sock := t.TempDir() + "/agent.sock"
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status/leader" {
			_, _ = w.Write([]byte(`"10.0.0.1:8300"`))
			return
		}
		http.NotFound(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	c, err := newConsulClient("consul-unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ping(); err != nil {
		t.Fatalf("ping over %s: %v", sock, err)
	}
	for _, bad := range []string{"consul-unix://", "consul-unix://host/x.sock", "consul://", "etcd://x:1"} {
		if _, err := newConsulClient(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestSplitTags(t *testing.T) {
	cases := map[string][]string{
		"":                                 nil,
		"a":                                {"a"},
		"gateway.route=/web strip=/web,v1": {"gateway.route=/web strip=/web", "v1"},
		",a,,b,":                           {"a", "b"},
		`x\,y,z`:                           {"x,y", "z"},
		" spaced , kept ":                  {" spaced ", " kept "},
	}
	for in, want := range cases {
		if got := splitTags(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitTags(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTagsPerPort(t *testing.T) {
	c := testContainer()
	c.Config.Env = append(c.Config.Env, "SERVICE_TAGS=all", "SERVICE_3000_TAGS=gateway.route=/web,web")
	meta, _ := serviceMetadata(c, "3000")
	if got := splitTags(meta["tags"]); !reflect.DeepEqual(got, []string{"gateway.route=/web", "web"}) {
		t.Fatalf("port tags: %q", got)
	}
}
