"""kube-api-auth: the TokenReview webhook behind the authorized cluster endpoint."""
