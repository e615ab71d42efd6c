# The workqueue-agent image: nothing but the static agent binary. `kubectl workqueue run` copies it
# into the user's pod with an init container (`workqueue-agent copy-self DEST`), so the image needs
# no shell or libc.
#
# Built only by goreleaser's dockers_v2 step in the release pipeline, which puts each platform's
# binary at <os>/<arch>/workqueue-agent in the build context; hence TARGETPLATFORM in the path.
FROM scratch
ARG TARGETPLATFORM
COPY ${TARGETPLATFORM}/workqueue-agent /workqueue-agent
# Non-root by default (the uid the plugin's init container asks for, pkg/job.AgentUID), so the
# image also runs where the "restricted" Pod Security Standard is enforced.
USER 65532:65532
ENTRYPOINT ["/workqueue-agent"]
