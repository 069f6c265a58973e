"""kubesim: a Kubernetes API stand-in that keeps kube-apiserver's contract."""
