# ringkv as a scratch image: one static binary, nothing else. Build it with `make image`,
# which prepares the build context (the binary and an empty data dir owned by the
# runtime user), since a scratch stage cannot run commands.
FROM scratch
COPY ringkv /ringkv
COPY --chown=65532:65532 data /data
# An empty directory the runtime user owns: a certs volume mounted here starts as it
# (compose.yaml's `certs` step writes the cluster's certificates into it).
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
