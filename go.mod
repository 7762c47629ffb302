module github.com/wsmachine/wsmachine

go 1.26

require (
	github.com/google/gofuzz v1.2.0
	github.com/gorilla/websocket v1.5.3
	go.uber.org/goleak v1.3.0
	pgregory.net/rapid v1.3.0
)
