"""What every area of the window shares: observable properties and bindings, the one job list and
its lanes, forms built from request fields, presets, the app's and the workspaces' remembered
settings, image conversion and background decoding. Nothing here knows a particular tab."""
