// Command registrator is a CI stand-in for registrator (github.com/fayrus/registrator v9.2.0), whose
// module the Go module proxy reachable here does not serve. Standard library only.
//
// It keeps registrator's command line and its consul behaviour: it watches Docker for containers
// starting and dying and registers one Consul agent service per container port:
//
//	registrator [options] consul://HOST:PORT      (also consul-tls://HOST:PORT, consul-unix:///path.sock)
//
//	service ID    <registrator's hostname>:<container name>:<port>[:udp]   (SERVICE_ID overrides)
//	service name  SERVICE_<port>_NAME, else SERVICE_NAME, else the image's base name
//	              (plus "-<port>" when the container has several ports and no per-port name)
//	address:port  -internal: the container's IP and exposed port; else the published host IP and port
//	tags, checks  SERVICE_TAGS, SERVICE_CHECK_HTTP=/path, SERVICE_CHECK_TCP=true, SERVICE_CHECK_INTERVAL=...
//	              (env vars or labels; SERVICE_<port>_<KEY> and SERVICE_<port>_<tcp|udp>_<KEY> per port)
//	SERVICE_IGNORE=1 skips a service; -explicit registers only containers with a service name.
//
// Docker is reached through DOCKER_HOST (default unix:///tmp/docker.sock, as registrator does).
// Not implemented: the non-consul backends and the httpGet/jsonParse tag-template functions.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
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
	"text/template"
	"time"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

var (
	hostIP          = flag.String("ip", "", "IP for ports mapped to the host")
	internal        = flag.Bool("internal", false, "Use internal ports instead of published ones")
	explicit        = flag.Bool("explicit", false, "Only register containers which have SERVICE_NAME label set")
	useIPFromLabel  = flag.String("useIpFromLabel", "", "Use IP which is stored in a label assigned to the container")
	ipFromContainer = flag.Bool("ip-from-container", false, "Use container IP instead of host IP for service registration")
	refreshInterval = flag.Int("ttl-refresh", 0, "Frequency with which service TTLs are refreshed")
	refreshTTL      = flag.Int("ttl", 0, "TTL for services (default is no expiry)")
	forceTags       = flag.String("tags", "", "Append tags for all registered services (supports Go template)")
	resyncInterval  = flag.Int("resync", 0, "Frequency with which services are resynchronized")
	deregisterMode  = flag.String("deregister", "always", "Deregister exited services \"always\" or \"on-success\"")
	retryAttempts   = flag.Int("retry-attempts", 0, "Max retry attempts to establish a connection with the backend. Use -1 for infinite retries")
	retryInterval   = flag.Int("retry-interval", 2000, "Interval (in millisecond) between retry-attempts.")
	cleanup         = flag.Bool("cleanup", false, "Remove dangling services")
)

// ---------------------------------------------------------------------------------------- docker

type portBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

type endpoint struct {
	IPAddress string `json:"IPAddress"`
}

// Container is the part of `docker inspect` used here; field names follow Docker's (and so the
// tag templates of registrator: {{.Name}}, {{.Config.Hostname}}, {{.Config.Env}}, ...).
type Container struct {
	ID     string `json:"Id"`
	Name   string `json:"Name"`
	Image  string `json:"Image"`
	Config struct {
		Hostname     string              `json:"Hostname"`
		Image        string              `json:"Image"`
		Env          []string            `json:"Env"`
		Labels       map[string]string   `json:"Labels"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
	} `json:"Config"`
	HostConfig struct {
		NetworkMode string `json:"NetworkMode"`
	} `json:"HostConfig"`
	NetworkSettings struct {
		IPAddress string                   `json:"IPAddress"`
		Ports     map[string][]portBinding `json:"Ports"`
		Networks  map[string]endpoint      `json:"Networks"`
	} `json:"NetworkSettings"`
	State struct {
		Running  bool `json:"Running"`
		ExitCode int  `json:"ExitCode"`
	} `json:"State"`
}

type listedContainer struct {
	ID string `json:"Id"`
}

type dockerEvent struct {
	Type   string `json:"Type"`
	Action string `json:"Action"`
	Status string `json:"status"`
	ID     string `json:"id"`
	Actor  struct {
		ID string `json:"ID"`
	} `json:"Actor"`
}

var errNoSuchContainer = errors.New("no such container")

type dockerClient struct {
	base   string
	client *http.Client // with a timeout
	stream *http.Client // without, for /events
}

func newDockerClient(host string) (*dockerClient, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("bad DOCKER_HOST %q: %w", host, err)
	}
	tr := &http.Transport{}
	base := ""
	switch u.Scheme {
	case "unix":
		sock := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}
		base = "http://docker"
	case "tcp", "http":
		base = "http://" + u.Host
	default:
		return nil, fmt.Errorf("unsupported DOCKER_HOST %q (unix:// or tcp:// only)", host)
	}
	return &dockerClient{
		base:   base,
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
	if resp.StatusCode == http.StatusNotFound {
		return errNoSuchContainer
	}
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
	HTTP                           string   `json:"HTTP,omitempty"`
	Method                         string   `json:"Method,omitempty"`
	Args                           []string `json:"Args,omitempty"`
	TTL                            string   `json:"TTL,omitempty"`
	TCP                            string   `json:"TCP,omitempty"`
	GRPC                           string   `json:"GRPC,omitempty"`
	GRPCUseTLS                     bool     `json:"GRPCUseTLS,omitempty"`
	Interval                       string   `json:"Interval,omitempty"`
	Timeout                        string   `json:"Timeout,omitempty"`
	TLSSkipVerify                  bool     `json:"TLSSkipVerify,omitempty"`
	Status                         string   `json:"Status,omitempty"`
	DeregisterCriticalServiceAfter string   `json:"DeregisterCriticalServiceAfter,omitempty"`
}

type consulRegistration struct {
	ID                string            `json:"ID"`
	Name              string            `json:"Name"`
	Tags              []string          `json:"Tags"`
	Port              int               `json:"Port"`
	Address           string            `json:"Address"`
	Meta              map[string]string `json:"Meta,omitempty"`
	EnableTagOverride bool              `json:"EnableTagOverride,omitempty"`
	Check             *consulCheck      `json:"Check,omitempty"`
}

type consulClient struct {
	base   string
	client *http.Client
}

func newConsulClient(uri string) (*consulClient, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, errors.New("bad adapter uri: " + uri)
	}
	tr := &http.Transport{}
	c := &consulClient{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	addr := u.Host
	if addr == "" {
		addr = os.Getenv("CONSUL_HTTP_ADDR")
	}
	if addr == "" {
		addr = "127.0.0.1:8500"
	}
	switch u.Scheme {
	case "consul":
		c.base = "http://" + addr
	case "consul-tls":
		cfg := &tls.Config{}
		if ca := os.Getenv("CONSUL_CACERT"); ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return nil, fmt.Errorf("consul: failed to set up TLS config: %w", err)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			cfg.RootCAs = pool
		}
		if cert, key := os.Getenv("CONSUL_CLIENT_CERT"), os.Getenv("CONSUL_CLIENT_KEY"); cert != "" && key != "" {
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return nil, fmt.Errorf("consul: failed to set up TLS config: %w", err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		tr.TLSClientConfig = cfg
		c.base = "https://" + addr
	case "consul-unix":
		sock := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}
		c.base = "http://consul"
	default:
		return nil, errors.New("unrecognized adapter: " + uri)
	}
	log.Println("Using", u.Scheme, "adapter:", uri)
	return c, nil
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
	if tok := os.Getenv("CONSUL_HTTP_TOKEN"); tok != "" {
		req.Header.Set("X-Consul-Token", tok)
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
	reg := consulRegistration{
		ID: s.ID, Name: s.Name, Tags: s.Tags, Port: s.Port, Address: s.IP,
		Meta: s.Attrs, Check: buildCheck(s), EnableTagOverride: s.Attrs["enable_tag_override"] == "true",
	}
	return c.do(http.MethodPut, "/v1/agent/service/register", reg, nil)
}

func (c *consulClient) deregister(s *service) error {
	return c.do(http.MethodPut, "/v1/agent/service/deregister/"+url.PathEscape(s.ID), nil, nil)
}

func (c *consulClient) services() ([]*service, error) {
	var m map[string]struct {
		ID      string
		Service string
		Port    int
		Address string
		Tags    []string
	}
	if err := c.do(http.MethodGet, "/v1/agent/services", nil, &m); err != nil {
		return nil, err
	}
	out := make([]*service, 0, len(m))
	for _, v := range m {
		out = append(out, &service{ID: v.ID, Name: v.Service, Port: v.Port, IP: v.Address, Tags: v.Tags})
	}
	return out, nil
}

func buildCheck(s *service) *consulCheck {
	a := s.Attrs
	ck := &consulCheck{Status: a["check_initial_status"]}
	hostPort := net.JoinHostPort(s.IP, strconv.Itoa(s.Port))
	switch {
	case a["check_http"] != "":
		ck.HTTP = "http://" + hostPort + a["check_http"]
		ck.Method = a["check_http_method"]
	case a["check_https"] != "":
		ck.HTTP = "https://" + hostPort + a["check_https"]
		ck.Method = a["check_https_method"]
	case a["check_cmd"] != "":
		ck.Args = []string{"check-cmd", short(s.containerID), s.exposedPort, a["check_cmd"]}
	case a["check_script"] != "":
		script := strings.ReplaceAll(a["check_script"], "$SERVICE_IP", s.IP)
		script = strings.ReplaceAll(script, "$SERVICE_PORT", strconv.Itoa(s.Port))
		ck.Args = strings.Split(script, " ")
	case a["check_ttl"] != "":
		ck.TTL = a["check_ttl"]
	case a["check_tcp"] != "":
		ck.TCP = hostPort
	case a["check_grpc"] != "":
		ck.GRPC = hostPort
		ck.GRPCUseTLS = a["check_grpc_use_tls"] != ""
	default:
		return nil
	}
	if len(ck.Args) != 0 || ck.HTTP != "" || ck.TCP != "" || ck.GRPC != "" {
		ck.Interval = a["check_interval"]
		if ck.Interval == "" {
			ck.Interval = "10s"
		}
		ck.Timeout = a["check_timeout"]
		ck.TLSSkipVerify = a["check_tls_skip_verify"] != ""
	}
	ck.DeregisterCriticalServiceAfter = a["check_deregister_after"]
	return ck
}

// ---------------------------------------------------------------------------------------- bridge

type servicePort struct {
	HostPort, HostIP, ExposedPort, ExposedIP, PortType string
	container                                          *Container
}

type service struct {
	ID, Name, IP string
	Port         int
	Tags         []string
	Attrs        map[string]string

	containerID, containerName, exposedPort string
}

var serviceIDPattern = regexp.MustCompile(`^(.+?):([a-zA-Z0-9][a-zA-Z0-9_.-]+):[0-9]+(?::udp)?$`)

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

func (b *bridge) add(id string, quiet bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addLocked(id, quiet)
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
		log.Println("ignored:", short(c.ID), "no published ports")
		return
	}
	keys := make([]string, 0, len(ports))
	for k, p := range ports {
		if !*internal && p.HostPort == "" {
			if !quiet {
				log.Println("ignored:", short(c.ID), "port", p.ExposedPort, "not published on host")
			}
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := ports[k]
		s, err := b.newService(p, len(keys) > 1)
		if err != nil {
			log.Println("ignored:", short(c.ID), "service on port", p.ExposedPort, err)
			continue
		}
		if s == nil {
			if !quiet {
				log.Println("ignored:", short(c.ID), "service on port", p.ExposedPort)
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

func containerPorts(c *Container) map[string]servicePort {
	ports := map[string]servicePort{}
	for p := range c.Config.ExposedPorts {
		p = normPort(p)
		ports[p] = makeServicePort(c, p, []portBinding{{HostIP: "0.0.0.0", HostPort: strings.Split(p, "/")[0]}})
	}
	for p, published := range c.NetworkSettings.Ports {
		p = normPort(p)
		ports[p] = makeServicePort(c, p, published)
	}
	return ports
}

// normPort: Docker may store an exposed port as "3000" (compose's `expose`) and the same one as
// "3000/tcp" in NetworkSettings.Ports; both mean 3000/tcp.
func normPort(p string) string {
	if !strings.Contains(p, "/") {
		return p + "/tcp"
	}
	return p
}

func makeServicePort(c *Container, port string, published []portBinding) servicePort {
	sp := servicePort{container: c, HostIP: "0.0.0.0", PortType: "tcp"}
	if len(published) > 0 {
		sp.HostPort = published[0].HostPort
		if published[0].HostIP != "" {
			sp.HostIP = published[0].HostIP
		}
	}
	nm := c.HostConfig.NetworkMode
	if nm != "bridge" && nm != "default" && nm != "host" && !strings.HasPrefix(nm, "container:") {
		// user-defined network (compose): the "host" address is the container's on that network
		sp.HostIP = c.NetworkSettings.Networks[nm].IPAddress
	}
	parts := strings.SplitN(port, "/", 2)
	sp.ExposedPort = parts[0]
	if len(parts) == 2 {
		sp.PortType = parts[1]
	}
	sp.ExposedIP = containerIP(c)
	return sp
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

func portInRange(r, port string) bool {
	lo, hi, ok := strings.Cut(r, "-")
	if !ok {
		return false
	}
	l, e1 := strconv.Atoi(lo)
	h, e2 := strconv.Atoi(hi)
	p, e3 := strconv.Atoi(port)
	return e1 == nil && e2 == nil && e3 == nil && p >= l && p <= h
}

// serviceMetadata reads SERVICE_* env vars and labels: global keys first, then keys for this port
// (SERVICE_<port>_<key>, SERVICE_<lo-hi>_<key>, SERVICE_<port>_<proto>_<key>), which win.
func serviceMetadata(c *Container, port, proto string) (map[string]string, map[string]bool) {
	kvs := append([]string{}, c.Config.Env...)
	labelKeys := make([]string, 0, len(c.Config.Labels))
	for k := range c.Config.Labels {
		labelKeys = append(labelKeys, k)
	}
	sort.Strings(labelKeys)
	for _, k := range labelKeys {
		kvs = append(kvs, k+"="+c.Config.Labels[k])
	}
	meta, fromPort := map[string]string{}, map[string]bool{}
	type kv struct{ k, v string }
	var perPort []kv
	for _, e := range kvs {
		k, v, ok := strings.Cut(e, "=")
		if !ok || !strings.HasPrefix(k, "SERVICE_") {
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(k, "SERVICE_"))
		first, rest, hasRest := strings.Cut(key, "_")
		_, err := strconv.Atoi(first)
		exact := err == nil
		isRange := !exact && isNumRange(first)
		switch {
		case (exact || isRange) && hasRest:
			if exact && first != port || isRange && !portInRange(first, port) {
				continue
			}
			pr, sub, hasSub := strings.Cut(rest, "_")
			if (pr == "tcp" || pr == "udp") && hasSub {
				if pr != proto {
					continue
				}
				rest = sub
			}
			perPort = append(perPort, kv{rest, v})
		case !exact && !isRange:
			meta[key] = v
		}
	}
	for _, p := range perPort {
		meta[p.k] = p.v
		fromPort[p.k] = true
	}
	return meta, fromPort
}

func isNumRange(s string) bool {
	lo, hi, ok := strings.Cut(s, "-")
	_, e1 := strconv.Atoi(lo)
	_, e2 := strconv.Atoi(hi)
	return ok && e1 == nil && e2 == nil
}

// splitTags splits on commas that are not escaped as "\,".
func splitTags(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ',':
			cur.WriteByte(',')
			i++
		case s[i] == ',':
			if cur.Len() > 0 {
				out = append(out, cur.String())
			}
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

var tagFuncs = template.FuncMap{
	"toUpper": strings.ToUpper,
	"toLower": strings.ToLower,
	"join":    func(sep string, s []string) string { return strings.Join(s, sep) },
	"split":   func(sep, v string) []string { return strings.Split(v, sep) },
	"replace": func(n int, old, new, v string) string { return strings.Replace(v, old, new, n) },
	"strSlice": func(v string, i ...int) string {
		switch {
		case len(i) == 1 && i[0] >= 0 && i[0] <= len(v):
			return v[i[0]:]
		case len(i) == 2 && i[0] >= 0 && i[0] <= i[1] && i[1] <= len(v):
			return v[i[0]:i[1]]
		}
		return v
	},
	"sIndex": func(i int, s []string) string { return pick(s, i) },
	"mIndex": func(k string, m map[string]string) string { return m[k] },
	"splitIndex": func(i int, sep, v string) string {
		return pick(strings.Split(v, sep), i)
	},
	"matchFirstElement": func(r string, s []string) string {
		re := regexp.MustCompile(r)
		for _, e := range s {
			if re.MatchString(e) {
				return e
			}
		}
		return ""
	},
	"matchAllElements": func(r string, s []string) []string {
		re := regexp.MustCompile(r)
		var m []string
		for _, e := range s {
			if re.MatchString(e) {
				m = append(m, e)
			}
		}
		return m
	},
}

// pick returns s[i]; a negative i counts from the end; out-of-range indexes clamp.
func pick(s []string, i int) string {
	if len(s) == 0 {
		return ""
	}
	if i < 0 {
		i = len(s) + i
	}
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func expandTags(t string, c *Container) (string, error) {
	if !strings.Contains(t, "{{") {
		return t, nil
	}
	tmpl, err := template.New("tags").Funcs(tagFuncs).Parse(t)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, c); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func (b *bridge) newService(p servicePort, isGroup bool) (*service, error) {
	c := p.container
	image := c.Config.Image
	if image == "" {
		image = c.Image
	}
	defaultName := strings.Split(path.Base(image), ":")[0]

	if p.HostIP == "0.0.0.0" && b.hostname != "" {
		if ip, err := net.ResolveIPAddr("ip", b.hostname); err == nil {
			p.HostIP = ip.String()
		}
	}
	idHost := b.hostname
	if idHost == "" {
		idHost = p.HostIP
	}
	if *hostIP != "" {
		p.HostIP = *hostIP
	}

	meta, fromPort := serviceMetadata(c, p.ExposedPort, p.PortType)
	if meta["ignore"] != "" {
		return nil, nil
	}
	name := meta["name"]
	if name == "" {
		if *explicit {
			return nil, nil
		}
		name = defaultName
	}
	s := &service{
		ID:            idHost + ":" + strings.TrimPrefix(c.Name, "/") + ":" + p.ExposedPort,
		Name:          name,
		containerID:   c.ID,
		containerName: strings.TrimPrefix(c.Name, "/"),
		exposedPort:   p.ExposedPort,
	}
	if isGroup && !fromPort["name"] {
		s.Name += "-" + p.ExposedPort
	}
	if *internal {
		s.IP = p.ExposedIP
		s.Port, _ = strconv.Atoi(p.ExposedPort)
	} else {
		s.IP = p.HostIP
		s.Port, _ = strconv.Atoi(p.HostPort)
	}
	if *ipFromContainer {
		s.IP = p.ExposedIP
	}
	if *useIPFromLabel != "" {
		if v := c.Config.Labels[*useIPFromLabel]; v != "" {
			s.IP, _, _ = strings.Cut(v, "/")
			log.Println("using container IP " + s.IP + " from label '" + *useIPFromLabel + "'")
		} else {
			log.Println("Label '" + *useIPFromLabel + "' not found in container configuration")
		}
	}
	if nm := c.HostConfig.NetworkMode; strings.HasPrefix(nm, "container:") {
		other := strings.TrimPrefix(nm, "container:")
		if oc, err := b.docker.inspect(other); err == nil {
			s.IP = containerIP(oc)
			log.Println(s.Name + ": using network container IP " + s.IP)
		} else {
			log.Println("unable to inspect network container:", short(other), err)
		}
	}

	ft, err := expandTags(*forceTags, c)
	if err != nil {
		return nil, fmt.Errorf("force tags template failed: %w", err)
	}
	st, err := expandTags(meta["tags"], c)
	if err != nil {
		return nil, fmt.Errorf("service tags template failed: %w", err)
	}
	s.Tags = append(splitTags(st), splitTags(ft)...)
	if p.PortType == "udp" {
		s.Tags = append(s.Tags, "udp")
		s.ID += ":udp"
	}
	if s.Tags == nil {
		s.Tags = []string{}
	}
	if id := meta["id"]; id != "" {
		s.ID = id
	}
	delete(meta, "id")
	delete(meta, "tags")
	delete(meta, "name")
	s.Attrs = meta
	return s, nil
}

func (b *bridge) removeOnExit(id string) {
	b.remove(id, b.shouldRemove(id))
}

func (b *bridge) remove(id string, deregister bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if deregister {
		for _, s := range b.services[id] {
			if err := b.registry.deregister(s); err != nil {
				log.Println("deregister failed:", s.ID, err)
				continue
			}
			log.Println("removed:", short(id), s.ID)
		}
	}
	delete(b.services, id)
}

func (b *bridge) shouldRemove(id string) bool {
	if *deregisterMode == "always" {
		return true
	}
	c, err := b.docker.inspect(id)
	switch {
	case errors.Is(err, errNoSuchContainer):
		log.Printf("registrator: container %v was removed, could not fetch exit code", short(id))
		return true
	case err != nil:
		log.Printf("registrator: error fetching status for container %v on \"die\" event: %v", short(id), err)
		return false
	case c.State.Running:
		log.Printf("registrator: not removing container %v, still running", short(id))
		return false
	}
	return c.State.ExitCode == 0 || c.State.ExitCode&128 == 128
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
			go b.removeOnExit(id)
		}
	}
	log.Println("Cleaning up dangling services")
	ext, err := b.registry.services()
	if err != nil {
		log.Println("cleanup failed:", err)
		return
	}
outer:
	for _, es := range ext {
		m := serviceIDPattern.FindStringSubmatch(es.ID)
		if len(m) != 3 || m[1] != b.hostname {
			continue
		}
		for _, ss := range b.services {
			for _, s := range ss {
				if s.Name == es.Name && s.containerName == m[2] {
					continue outer
				}
			}
		}
		log.Println("dangling:", es.ID)
		if err := b.registry.deregister(es); err != nil {
			log.Println("deregister failed:", es.ID, err)
			continue
		}
		log.Println(es.ID, "removed")
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
	if *hostIP != "" {
		log.Println("Forcing host IP to", *hostIP)
	}
	if (*refreshTTL == 0) != (*refreshInterval == 0) {
		log.Fatal("-ttl and -ttl-refresh must be specified together or not at all")
	} else if *refreshTTL > 0 && *refreshTTL <= *refreshInterval {
		log.Fatal("-ttl must be greater than -ttl-refresh")
	}
	if *retryInterval <= 0 {
		log.Fatal("-retry-interval must be greater than 0")
	}
	if *deregisterMode != "always" && *deregisterMode != "on-success" {
		log.Fatal("-deregister must be \"always\" or \"on-success\"")
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
	for attempt := 0; ; attempt++ {
		log.Printf("Connecting to backend (%v/%v)", attempt, *retryAttempts)
		err = registry.ping()
		if err == nil {
			break
		}
		if *retryAttempts != -1 && attempt >= *retryAttempts {
			log.Fatal(err)
		}
		time.Sleep(time.Duration(*retryInterval) * time.Millisecond)
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
			go b.add(id, false)
		case "die":
			go b.removeOnExit(id)
		}
	}
	log.Fatal("Docker event loop closed")
}
