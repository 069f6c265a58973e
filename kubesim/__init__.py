"""kubesim: a Kubernetes API stand-in that keeps kube-apiserver's contract.

Run it with ``python -m kubesim --port 0`` (prints one JSON ready line) or in-process with
``async with KubeSim(Options(...)) as sim:`` (``kubesim.server``), which exposes ``url``,
``kubeconfig_path``, ``store`` and ``ca_pem``.

Module map (one concern each): ``store`` (objects, revisions, watch history, deletion
semantics), ``resources`` (served kinds), ``crd`` (CRD controller), ``api`` (request pipeline
and verbs), ``watch``, ``listing``, ``selectors``, ``patch``, ``ssa`` (managedFields and
server-side apply), ``tables``, ``discovery``, ``openapi``, ``codec``, ``conversion``
(events.k8s.io view of core Events), ``authhooks`` (calls into ``kubesim.auth``),
``authtypes`` (UserInfo, RequestAttributes), ``errors`` (StatusError), ``certs`` and
``kubeconfig``. ``kubesim.auth`` and ``kubesim.sim`` are plug-ins found at start-up.
"""
