package main

import (
	"reflect"
	"testing"
)

func testContainer() *Container {
	c := &Container{ID: "0123456789abcdef0123", Name: "/proj-web-1"}
	c.Config.Image = "local/node:24"
	c.Config.Env = []string{
		"PATH=/usr/bin", "SERVICE_TAGS=a,b\\,c", "SERVICE_3000_NAME=web", "SERVICE_CHECK_HTTP=/health",
		"SERVICE_9229_IGNORE=1", "SERVICE_4000-4010_NAME=ranged", "SERVICE_5000_UDP_NAME=dns",
	}
	c.Config.Labels = map[string]string{"SERVICE_REGION": "eu"}
	c.Config.ExposedPorts = map[string]struct{}{"3000": {}, "9229/tcp": {}}
	c.NetworkSettings.Ports = map[string][]portBinding{"3000/tcp": nil}
	c.HostConfig.NetworkMode = "proj_default"
	c.NetworkSettings.Networks = map[string]endpoint{"proj_default": {IPAddress: "172.18.0.5"}}
	return c
}

func TestServiceMetadata(t *testing.T) {
	c := testContainer()
	meta, fromPort := serviceMetadata(c, "3000", "tcp")
	want := map[string]string{"tags": "a,b\\,c", "name": "web", "check_http": "/health", "region": "eu"}
	if !reflect.DeepEqual(meta, want) || !fromPort["name"] {
		t.Fatalf("meta %v fromPort %v", meta, fromPort)
	}
	if m, _ := serviceMetadata(c, "4005", "tcp"); m["name"] != "ranged" {
		t.Fatalf("range: %v", m)
	}
	if m, _ := serviceMetadata(c, "5000", "tcp"); m["name"] != "" {
		t.Fatalf("udp key applied to tcp: %v", m)
	}
	if m, _ := serviceMetadata(c, "5000", "udp"); m["name"] != "dns" {
		t.Fatalf("udp: %v", m)
	}
}

func TestSplitTags(t *testing.T) {
	if got := splitTags("a,b\\,c,,d"); !reflect.DeepEqual(got, []string{"a", "b,c", "d"}) {
		t.Fatal(got)
	}
	if got := splitTags(""); got != nil {
		t.Fatal(got)
	}
}

func TestNewServiceInternal(t *testing.T) {
	*internal = true
	defer func() { *internal = false }()
	b := &bridge{hostname: "reg-host"}
	c := testContainer()
	ports := containerPorts(c)
	if len(ports) != 2 {
		t.Fatalf("ports %v", ports)
	}
	s, err := b.newService(ports["3000/tcp"], true)
	if err != nil || s == nil {
		t.Fatal(s, err)
	}
	if s.ID != "reg-host:proj-web-1:3000" || s.Name != "web" || s.IP != "172.18.0.5" || s.Port != 3000 {
		t.Fatalf("%+v", s)
	}
	if !reflect.DeepEqual(s.Tags, []string{"a", "b,c"}) || s.Attrs["check_http"] != "/health" {
		t.Fatalf("%+v", s)
	}
	if ck := buildCheck(s); ck == nil || ck.HTTP != "http://172.18.0.5:3000/health" || ck.Interval != "10s" {
		t.Fatalf("%+v", ck)
	}
	if s, _ := b.newService(ports["9229/tcp"], true); s != nil {
		t.Fatalf("ignored port registered: %+v", s)
	}
	// no SERVICE_NAME for the port: image base name, "-port" in a group
	c.Config.Env = nil
	s, _ = b.newService(containerPorts(c)["3000/tcp"], true)
	if s.Name != "node-3000" {
		t.Fatalf("%+v", s)
	}
}

func TestTagTemplate(t *testing.T) {
	c := testContainer()
	got, err := expandTags(`{{ toUpper (strSlice .Name 1) }},x`, c)
	if err != nil || got != "PROJ-WEB-1,x" {
		t.Fatal(got, err)
	}
}
