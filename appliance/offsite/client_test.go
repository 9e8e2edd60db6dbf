package offsite

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// With several vault nodes the box moves on from one that is out of reach
// or passes it on ("moved"), and stays with the one that answers.
func TestClientMovesToTheNextVaultNode(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // out of reach
	moved := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"code":"moved","error":"vault: this vault node does not write namespace n1 now"}`))
	}))
	defer moved.Close()
	var served int
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served++
		w.Write([]byte(`{}`))
	}))
	defer up.Close()

	c := newClient([]string{down.URL, moved.URL, up.URL}, http.DefaultClient)
	ctx := context.Background()
	if err := c.do(ctx, "GET", "/v1/wal", nil, nil, nil); err == nil {
		t.Fatal("a node out of reach answered")
	}
	if err := c.do(ctx, "GET", "/v1/wal", nil, nil, nil); err == nil {
		t.Fatal("the node that passed the box on answered as if it held it")
	} else if code, _ := code(err); code != "moved" {
		t.Fatalf("the second node's answer: %v; want moved", err)
	}
	for i := range 3 {
		if err := c.do(ctx, "GET", "/v1/wal", nil, nil, nil); err != nil {
			t.Fatalf("request %d to the third node: %v", i, err)
		}
	}
	if served != 3 {
		t.Errorf("the node that answers served %d requests; want 3 (the box stays with it)", served)
	}
}
