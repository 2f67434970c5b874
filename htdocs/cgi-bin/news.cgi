#!/bin/sh
# An application that hands its response over to mod_sse (SSEHandover on):
# after its own checks it answers with X-SSE-Channel, and the request
# becomes a live stream on that channel.  Try:
#   curl -N http://localhost:8080/cgi-bin/news.cgi
#   tools/sse-publish --url http://localhost:8080/publish news 'hello'
printf 'Content-Type: text/event-stream\r\n'
printf 'X-SSE-Channel: news\r\n\r\n'
printf ': welcome to the news stream\n\n'
