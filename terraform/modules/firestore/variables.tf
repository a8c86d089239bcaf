variable "location" {
  type        = string
  description = "Firestore location (a region, e.g. europe-west1, or a multi-region, e.g. eur3)."
}
