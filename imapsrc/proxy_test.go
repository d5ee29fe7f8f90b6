package imapsrc_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// proxy is a TCP proxy on a loopback port between a Source and an IMAP
// server that cuts connections where a test says, at a point of the
// conversation rather than of the clock: every connection once it has
// forwarded a number of bytes from the server, or at a point of a line
// the server sends. A cut closes both sides, as a network failure would: the
// client reads what was forwarded before it, then the end of the
// connection.
type proxy struct {
	addr   string
	target string
	opts   proxyOptions

	mu    sync.Mutex
	conns []net.Conn // both sides of every connection, closed at the end
	n     int        // connections accepted
	cuts  int
}

type proxyOptions struct {
	// cutAfter, if positive, cuts every connection once it has forwarded
	// that many bytes from the server.
	cutAfter int64
	// cutAt, if set, is asked about each line the server sends (a long
	// line or literal comes in pieces of up to 64 KB) with the number of
	// its connection (1 for the first): it returns how much of the line
	// to forward before cutting that connection, or -1 for none.
	cutAt func(conn int, line []byte) int
	// holdFrom and holdUntil, if set, make the proxy hold what the server
	// sends from a line holding holdFrom on, and forward it in one write
	// with the first line holding holdUntil: the client then receives
	// that stretch in one piece.
	holdFrom, holdUntil string
}

// startProxy starts a proxy to target, closed when the test ends.
func startProxy(t testing.TB, target string, opts proxyOptions) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{addr: ln.Addr().String(), target: target, opts: opts}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			p.mu.Lock()
			p.n++
			n := p.n
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			cut := sync.OnceFunc(func() {
				// The end of the data first, so that what was
				// forwarded reaches the client before any reset.
				_ = client.(*net.TCPConn).CloseWrite()
				client.Close()
				server.Close()
			})
			wg.Go(func() {
				_, _ = io.Copy(server, client)
				cut()
			})
			wg.Go(func() {
				if p.forward(n, client, server) {
					p.mu.Lock()
					p.cuts++
					p.mu.Unlock()
				}
				cut()
			})
		}
	})
	return p
}

// forward copies what the server sends on connection n to the client
// until either side ends it, or until a cut, which it reports.
func (p *proxy) forward(n int, client, server net.Conn) (cut bool) {
	r := bufio.NewReaderSize(server, 64<<10)
	var sent int64
	var held []byte
	for {
		line, err := r.ReadSlice('\n')
		if h := p.opts; len(line) > 0 && h.holdFrom != "" && (held != nil || bytes.Contains(line, []byte(h.holdFrom))) {
			held = append(held, line...)
			if !bytes.Contains(line, []byte(h.holdUntil)) {
				continue
			}
			line, held = held, nil
		}
		if len(line) > 0 {
			if p.opts.cutAt != nil {
				if i := p.opts.cutAt(n, line); i >= 0 {
					_, _ = client.Write(line[:i])
					return true
				}
			}
			if limit := p.opts.cutAfter; limit > 0 && sent+int64(len(line)) >= limit {
				_, _ = client.Write(line[:limit-sent])
				return true
			}
			if _, err := client.Write(line); err != nil {
				return false
			}
			sent += int64(len(line))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return false
		}
	}
}

// connections returns how many connections the proxy has accepted and
// how many it has cut.
func (p *proxy) connections() (accepted, cut int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.cuts
}

// before returns a proxyOptions.cutAt that cuts the connections for
// which match is true before the first line holding pattern, and, with
// inside, in that line just before pattern.
func before(pattern string, inside bool, match func(conn int) bool) func(int, []byte) int {
	return func(conn int, line []byte) int {
		i := bytes.Index(line, []byte(pattern))
		if i < 0 || !match(conn) {
			return -1
		}
		if inside {
			return i
		}
		return 0
	}
}
