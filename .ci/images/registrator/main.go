// Command registrator is a CI stand-in for registrator (github.com/fayrus/registrator v9.2.0), whose
// module the Go module proxy reachable here does not serve. Standard library only.
//
// It implements only what this repository's compose files and tests use, with registrator's
// behaviour for those:
//
//	registrator -internal [-cleanup] [-resync=SECONDS] consul://HOST:PORT | consul-unix:///PATH
//
// It watches Docker for containers starting and dying and registers one Consul agent service per
// exposed TCP port of each container:
//
//	service ID    <registrator's hostname>:<container name>:<port>
//	service name  SERVICE_<port>_NAME, else SERVICE_NAME, else the image's base name
//	              (plus "-<port>" when the container has several ports and no per-port name)
//	address:port  the container's IP and exposed port (-internal, the only mode implemented)
//	check         SERVICE_[<port>_]CHECK_HTTP=/path, SERVICE_[<port>_]CHECK_INTERVAL (default 10s),
//	              SERVICE_[<port>_]CHECK_TIMEOUT: an HTTP check on http://<ip>:<port><path>
//	tags          SERVICE_[<port>_]TAGS: comma-separated ("\\," for a comma inside a tag)
//	SERVICE_[<port>_]IGNORE=<anything> skips the service.
//
// SERVICE_* keys are read from the container's environment (not its labels). On "die" the
// container's services are deregistered. -resync re-registers every known service and adds missed
// containers every N seconds; -cleanup then also deregisters this registrator's services (by ID
// prefix) whose container is gone.
//
// Consul is called with the ACL token from CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE (X-Consul-Token),
// as registrator's Consul client (hashicorp/consul/api) finds it.
//
// Docker is reached through DOCKER_HOST (unix:///path or tcp://HOST:PORT, plain HTTP; default
// unix:///tmp/docker.sock, as registrator does). Not implemented, because nothing here uses them: published-port mode, the
// other backends (and consul-tls), -tags and tag templates, SERVICE_ID, labels, checks
// other than HTTP, -explicit, -deregister, -ttl, -ip and the other flags.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

var (
	internal       = flag.Bool("internal", false, "Use internal ports instead of published ones (required: the only mode implemented)")
	resyncInterval = flag.Int("resync", 0, "Frequency with which services are resynchronized")
	cleanup        = flag.Bool("cleanup", false, "Remove dangling services")
)

// ---------------------------------------------------------------------------------------- docker

type endpoint struct {
	IPAddress string `json:"IPAddress"`
}

// Container is the part of `docker inspect` used here.
type Container struct {
	ID     string `json:"Id"`
	Name   string `json:"Name"`
	Image  string `json:"Image"`
	Config struct {
		Image        string              `json:"Image"`
		Env          []string            `json:"Env"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
	} `json:"Config"`
	HostConfig struct {
		NetworkMode string `json:"NetworkMode"`
	} `json:"HostConfig"`
	NetworkSettings struct {
		IPAddress string                     `json:"IPAddress"`
		Ports     map[string]json.RawMessage `json:"Ports"`
		Networks  map[string]endpoint        `json:"Networks"`
	} `json:"NetworkSettings"`
}

type listedContainer struct {
	ID string `json:"Id"`
}

type dockerEvent struct {
	Action string `json:"Action"`
	Status string `json:"status"`
	ID     string `json:"id"`
	Actor  struct {
		ID string `json:"ID"`
	} `json:"Actor"`
}

type dockerClient struct {
	base   string
	client *http.Client // with a timeout
	stream *http.Client // without, for /events
}

// newDockerClient: DOCKER_HOST unix:///path or tcp://host:port (plain HTTP, e.g. a socket proxy;
// no TLS, as registrator without DOCKER_TLS_VERIFY).
func newDockerClient(host string) (*dockerClient, error) {
	network, addr := "", ""
	if sock, ok := strings.CutPrefix(host, "unix://"); ok && sock != "" {
		network, addr = "unix", sock
	} else if hp, ok := strings.CutPrefix(host, "tcp://"); ok && hp != "" {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return nil, fmt.Errorf("unsupported DOCKER_HOST %q: %v", host, err)
		}
		network, addr = "tcp", hp
	} else {
		return nil, fmt.Errorf("unsupported DOCKER_HOST %q (unix:// or tcp://HOST:PORT only)", host)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	return &dockerClient{
		base:   "http://docker",
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		stream: &http.Client{Transport: tr},
	}, nil
}

func (d *dockerClient) getJSON(p string, out any) error {
	resp, err := d.client.Get(d.base + p)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("docker %s: %s: %s", p, resp.Status, bytes.TrimSpace(b))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (d *dockerClient) listContainers(filters map[string][]string) ([]listedContainer, error) {
	p := "/containers/json"
	if len(filters) > 0 {
		f, _ := json.Marshal(filters)
		p += "?filters=" + url.QueryEscape(string(f))
	}
	var out []listedContainer
	return out, d.getJSON(p, &out)
}

func (d *dockerClient) inspect(id string) (*Container, error) {
	var c Container
	if err := d.getJSON("/containers/"+url.PathEscape(id)+"/json", &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// events streams container start/die events until the connection ends; ready runs once the
// subscription is in place.
func (d *dockerClient) events(ready func(), handle func(dockerEvent)) error {
	f, _ := json.Marshal(map[string][]string{"type": {"container"}, "event": {"start", "die"}})
	resp, err := d.stream.Get(d.base + "/events?filters=" + url.QueryEscape(string(f)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("docker /events: %s", resp.Status)
	}
	ready()
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var ev dockerEvent
		if err := dec.Decode(&ev); err != nil {
			return err
		}
		handle(ev)
	}
}

// ---------------------------------------------------------------------------------------- consul

type consulCheck struct {
	HTTP     string `json:"HTTP"`
	Interval string `json:"Interval"`
	Timeout  string `json:"Timeout,omitempty"`
}

type consulRegistration struct {
	ID      string       `json:"ID"`
	Name    string       `json:"Name"`
	Port    int          `json:"Port"`
	Address string       `json:"Address"`
	Tags    []string     `json:"Tags,omitempty"`
	Check   *consulCheck `json:"Check,omitempty"`
}

type consulClient struct {
	base   string
	token  string
	client *http.Client
}

// consulToken is the ACL token as Consul's Go API client (hashicorp/consul/api, which registrator
// uses) finds it: CONSUL_HTTP_TOKEN, replaced by the trimmed contents of CONSUL_HTTP_TOKEN_FILE when
// that is set and not empty; an unreadable file is an error at start.
func consulToken(getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	token := getenv("CONSUL_HTTP_TOKEN")
	if f := getenv("CONSUL_HTTP_TOKEN_FILE"); f != "" {
		b, err := readFile(f)
		if err != nil {
			return "", fmt.Errorf("Error loading token file: %s", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			token = t
		}
	}
	return token, nil
}

// newConsulClient: consul://HOST:PORT, or consul-unix:///path/to/agent.sock (registrator's scheme
// for an agent's HTTP API on a Unix socket; the swarm stack uses it to reach its own node's agent).
func newConsulClient(uri string) (*consulClient, error) {
	u, err := url.Parse(uri)
	bad := errors.New("unrecognized adapter: " + uri + " (only consul://HOST:PORT and consul-unix:///PATH are implemented)")
	if err != nil {
		return nil, bad
	}
	client := &http.Client{Timeout: 30 * time.Second}
	base := "http://" + u.Host
	switch {
	case u.Scheme == "consul" && u.Host != "":
	case u.Scheme == "consul-unix" && u.Host == "" && u.Path != "":
		sock := u.Path
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}
		base = "http://consul"
	default:
		return nil, bad
	}
	token, err := consulToken(os.Getenv, os.ReadFile)
	if err != nil {
		return nil, err
	}
	log.Println("Using consul adapter:", uri)
	return &consulClient{base: base, token: token, client: client}, nil
}

func (c *consulClient) do(method, p string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+p, rd)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("X-Consul-Token", c.token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("Unexpected response code: %d (%s)", resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

func (c *consulClient) ping() error {
	var leader string
	if err := c.do(http.MethodGet, "/v1/status/leader", nil, &leader); err != nil {
		return err
	}
	log.Println("consul: current leader ", leader)
	return nil
}

func (c *consulClient) register(s *service) error {
	reg := consulRegistration{ID: s.ID, Name: s.Name, Port: s.Port, Address: s.IP, Tags: splitTags(s.Attrs["tags"]), Check: buildCheck(s)}
	return c.do(http.MethodPut, "/v1/agent/service/register", reg, nil)
}

func (c *consulClient) deregister(id string) error {
	return c.do(http.MethodPut, "/v1/agent/service/deregister/"+url.PathEscape(id), nil, nil)
}

// services: the agent's services, ID → name.
func (c *consulClient) services() (map[string]string, error) {
	var m map[string]struct{ ID, Service string }
	if err := c.do(http.MethodGet, "/v1/agent/services", nil, &m); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for _, v := range m {
		out[v.ID] = v.Service
	}
	return out, nil
}

// splitTags: SERVICE_[<port>_]TAGS as registrator reads it: split on commas not escaped as
// "\,", the escape removed, empty parts dropped, nothing trimmed. (registrator's recursive split
// also reverses the order; Consul keeps a service's tags in the order given, and nothing here
// depends on it, so they keep the order written.)
func splitTags(v string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
		}
		cur.Reset()
	}
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && v[i+1] == ',':
			cur.WriteByte(',')
			i++
		case v[i] == ',':
			flush()
		default:
			cur.WriteByte(v[i])
		}
	}
	flush()
	return out
}

func buildCheck(s *service) *consulCheck {
	p := s.Attrs["check_http"]
	if p == "" {
		return nil
	}
	ck := &consulCheck{
		HTTP:     "http://" + net.JoinHostPort(s.IP, strconv.Itoa(s.Port)) + p,
		Interval: s.Attrs["check_interval"],
		Timeout:  s.Attrs["check_timeout"],
	}
	if ck.Interval == "" {
		ck.Interval = "10s"
	}
	return ck
}

// ---------------------------------------------------------------------------------------- bridge

type service struct {
	ID, Name, IP string
	Port         int
	Attrs        map[string]string // the remaining SERVICE_* keys, lower case (check_http, ...)

	containerName string
}

// serviceIDPattern: <registrator hostname>:<container name>:<port>, the IDs this registrator makes.
var serviceIDPattern = regexp.MustCompile(`^(.+?):([a-zA-Z0-9][a-zA-Z0-9_.-]+):[0-9]+$`)

type bridge struct {
	mu       sync.Mutex
	docker   *dockerClient
	registry *consulClient
	hostname string
	services map[string][]*service // by container ID
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (b *bridge) add(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addLocked(id, false)
}

func (b *bridge) addLocked(id string, quiet bool) {
	if b.services[id] != nil {
		log.Println("container, ", short(id), ", already exists, ignoring")
		return
	}
	c, err := b.docker.inspect(id)
	if err != nil {
		log.Println("unable to inspect container:", short(id), err)
		return
	}
	ports := containerPorts(c)
	if len(ports) == 0 && !quiet {
		log.Println("ignored:", short(c.ID), "no exposed TCP ports")
		return
	}
	for _, port := range ports {
		s := b.newService(c, port, len(ports) > 1)
		if s == nil {
			if !quiet {
				log.Println("ignored:", short(c.ID), "service on port", port)
			}
			continue
		}
		if err := b.registry.register(s); err != nil {
			log.Println("register failed:", s.ID, err)
			continue
		}
		b.services[c.ID] = append(b.services[c.ID], s)
		log.Println("added:", short(c.ID), s.ID)
	}
}

// containerPorts: the container's exposed and published TCP ports, sorted. Docker may store an
// exposed port as "3000" (compose's `expose`) and the same one as "3000/tcp"; both mean 3000/tcp.
func containerPorts(c *Container) []string {
	set := map[string]bool{}
	addPort := func(p string) {
		num, proto, _ := strings.Cut(p, "/")
		if proto == "" || proto == "tcp" {
			set[num] = true
		}
	}
	for p := range c.Config.ExposedPorts {
		addPort(p)
	}
	for p := range c.NetworkSettings.Ports {
		addPort(p)
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// containerIP: the default-bridge IP, else the IP on the network named by NetworkMode, else the
// IP on the first network by name.
func containerIP(c *Container) string {
	if c.NetworkSettings.IPAddress != "" {
		return c.NetworkSettings.IPAddress
	}
	if ep, ok := c.NetworkSettings.Networks[c.HostConfig.NetworkMode]; ok && ep.IPAddress != "" {
		return ep.IPAddress
	}
	names := make([]string, 0, len(c.NetworkSettings.Networks))
	for n := range c.NetworkSettings.Networks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if ip := c.NetworkSettings.Networks[n].IPAddress; ip != "" {
			return ip
		}
	}
	return ""
}

// serviceMetadata reads the SERVICE_* environment variables for one port: global keys
// (SERVICE_<key>) first, then SERVICE_<port>_<key>, which win. Keys come back lower case; the
// second result says which keys were set for the port.
func serviceMetadata(c *Container, port string) (map[string]string, map[string]bool) {
	meta, fromPort := map[string]string{}, map[string]bool{}
	perPort := map[string]string{}
	for _, e := range c.Config.Env {
		k, v, ok := strings.Cut(e, "=")
		if !ok || !strings.HasPrefix(k, "SERVICE_") {
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(k, "SERVICE_"))
		first, rest, hasRest := strings.Cut(key, "_")
		if _, err := strconv.Atoi(first); err != nil {
			meta[key] = v
		} else if hasRest && first == port {
			perPort[rest] = v
		}
	}
	for k, v := range perPort {
		meta[k] = v
		fromPort[k] = true
	}
	return meta, fromPort
}

// newService: the service for one port of c, nil when SERVICE_[<port>_]IGNORE is set.
func (b *bridge) newService(c *Container, port string, isGroup bool) *service {
	meta, fromPort := serviceMetadata(c, port)
	if meta["ignore"] != "" {
		return nil
	}
	name := meta["name"]
	if name == "" {
		image := c.Config.Image
		if image == "" {
			image = c.Image
		}
		name = strings.Split(path.Base(image), ":")[0]
	}
	if isGroup && !fromPort["name"] {
		name += "-" + port
	}
	containerName := strings.TrimPrefix(c.Name, "/")
	s := &service{
		ID:            b.hostname + ":" + containerName + ":" + port,
		Name:          name,
		IP:            containerIP(c),
		containerName: containerName,
	}
	s.Port, _ = strconv.Atoi(port)
	delete(meta, "name")
	s.Attrs = meta
	return s
}

// remove deregisters the container's services (registrator's default, -deregister=always).
func (b *bridge) remove(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.services[id] {
		if err := b.registry.deregister(s.ID); err != nil {
			log.Println("deregister failed:", s.ID, err)
			continue
		}
		log.Println("removed:", short(id), s.ID)
	}
	delete(b.services, id)
}

func (b *bridge) sync(quiet bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	containers, err := b.docker.listContainers(nil)
	if err != nil {
		if quiet {
			log.Println("error listing containers, skipping sync")
			return
		}
		log.Fatal(err)
	}
	log.Printf("Syncing services on %d containers", len(containers))
	for _, lc := range containers {
		if ss := b.services[lc.ID]; ss == nil {
			b.addLocked(lc.ID, quiet)
		} else {
			for _, s := range ss {
				if err := b.registry.register(s); err != nil {
					log.Println("sync register failed:", s.ID, err)
				}
			}
		}
	}
	if *cleanup {
		b.cleanupLocked()
	}
}

// cleanupLocked forgets (and deregisters) services of containers no longer alive, then
// deregisters the agent's services that carry this registrator's hostname in their ID but belong
// to no known container: those of containers removed while registrator was down.
func (b *bridge) cleanupLocked() {
	log.Println("Listing non-exited containers")
	live, err := b.docker.listContainers(map[string][]string{"status": {"created", "restarting", "running", "paused"}})
	if err != nil {
		log.Println("error listing nonExitedContainers, skipping sync", err)
		return
	}
	alive := map[string]bool{}
	for _, lc := range live {
		alive[lc.ID] = true
	}
	for id := range b.services {
		if !alive[id] {
			log.Printf("stale: Removing service %s because it does not exist", id)
			go b.remove(id)
		}
	}
	log.Println("Cleaning up dangling services")
	ext, err := b.registry.services()
	if err != nil {
		log.Println("cleanup failed:", err)
		return
	}
	ids := make([]string, 0, len(ext))
	for id := range ext {
		ids = append(ids, id)
	}
	sort.Strings(ids)
outer:
	for _, id := range ids {
		m := serviceIDPattern.FindStringSubmatch(id)
		if len(m) != 3 || m[1] != b.hostname {
			continue
		}
		for _, ss := range b.services {
			for _, s := range ss {
				if s.Name == ext[id] && s.containerName == m[2] {
					continue outer
				}
			}
		}
		log.Println("dangling:", id)
		if err := b.registry.deregister(id); err != nil {
			log.Println("deregister failed:", id, err)
			continue
		}
		log.Println(id, "removed")
	}
}

// ---------------------------------------------------------------------------------------- main

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println(Version)
		os.Exit(0)
	}
	log.Printf("Starting registrator %s ...", Version)
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage of %s:\n", os.Args[0])
		fmt.Fprintf(os.Stderr, "  %s [options] <registry URI>\n\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		if flag.NArg() == 0 {
			fmt.Fprint(os.Stderr, "Missing required argument for registry URI.\n\n")
		} else {
			fmt.Fprintln(os.Stderr, "Extra unparsed arguments:")
			fmt.Fprintln(os.Stderr, " ", strings.Join(flag.Args()[1:], " "))
			fmt.Fprint(os.Stderr, "Options should come before the registry URI argument.\n\n")
		}
		flag.Usage()
		os.Exit(2)
	}
	if !*internal {
		log.Fatal("this stand-in implements only -internal (container IP and exposed port)")
	}

	dockerHost := os.Getenv("DOCKER_HOST")
	if dockerHost == "" {
		dockerHost = "unix:///tmp/docker.sock"
	}
	docker, err := newDockerClient(dockerHost)
	if err != nil {
		log.Fatal(err)
	}
	registry, err := newConsulClient(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	// registrator's default -retry-attempts=0: one try, then exit (compose restarts it).
	log.Println("Connecting to backend (0/0)")
	if err := registry.ping(); err != nil {
		log.Fatal(err)
	}

	hostname, _ := os.Hostname()
	b := &bridge{docker: docker, registry: registry, hostname: hostname, services: map[string][]*service{}}

	// Subscribe before the first sync so that no start is missed.
	evs := make(chan dockerEvent, 64)
	subscribed := make(chan error, 1)
	go func() {
		err := docker.events(func() { subscribed <- nil }, func(ev dockerEvent) { evs <- ev })
		select {
		case subscribed <- err: // failed before subscribing
		default:
		}
		log.Println("docker events:", err)
		close(evs)
	}()
	if err := <-subscribed; err != nil {
		log.Fatal(err)
	}
	log.Println("Listening for Docker events ...")

	b.sync(false)

	if *resyncInterval > 0 {
		go func() {
			for range time.Tick(time.Duration(*resyncInterval) * time.Second) {
				b.sync(true)
			}
		}()
	}

	for ev := range evs {
		action := ev.Action
		if action == "" {
			action = ev.Status
		}
		id := ev.Actor.ID
		if id == "" {
			id = ev.ID
		}
		switch action {
		case "start":
			go b.add(id)
		case "die":
			go b.remove(id)
		}
	}
	log.Fatal("Docker event loop closed")
}
