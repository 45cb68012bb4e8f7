# ringkv as a scratch image: one static binary, nothing else. Build it with `make image`,
# which prepares the build context (the binary and an empty data dir owned by the
# runtime user), since a scratch stage cannot run commands.
FROM scratch
COPY ringkv /ringkv
COPY --chown=65532:65532 data /data
# Where a node's certificates are mounted (compose.yaml: each node's own volume, which
# its `certs` step fills).
COPY --chown=65532:65532 data /certs
USER 65532:65532
ENV RINGKV_DATA_DIR=/data \
    RINGKV_HTTP_ADDR=0.0.0.0:8080 \
    RINGKV_RAFT_ADDR=0.0.0.0:7080
VOLUME /data
EXPOSE 8080 7080
HEALTHCHECK --interval=2s --timeout=3s --start-period=10s --retries=3 CMD ["/ringkv", "health"]
ENTRYPOINT ["/ringkv"]
CMD ["serve"]
