/**
 * The command table. Modules load lazily so that `rkt run` pays only for what it uses.
 * `image` holds its own subcommands, as in rkt. cli.ts hands it to the tree (cli/tree.ts),
 * which imports no command, so help, man and completion may walk it without a cycle.
 */
import type { Entry } from './tree.js';

export const COMMANDS: Record<string, Entry> = {
  'run': { summary: 'Run image(s) in a pod in rkt', load: async () => (await import('./run.js')).command },
  'prepare': { summary: 'Prepare to run image(s) in a pod in rkt', load: async () => (await import('./prepare.js')).command },
  'run-prepared': { summary: 'Run a prepared application pod in rkt', load: async () => (await import('./run-prepared.js')).command },
  'fetch': { summary: 'Fetch image(s) and store them in the local store', load: async () => (await import('./fetch.js')).command },
  'trust': { summary: 'Trust a key for image verification', load: async () => (await import('./trust.js')).command },
  'list': { summary: 'List pods', load: async () => (await import('./list.js')).command },
  'status': { summary: 'Check the status of a rkt pod', load: async () => (await import('./status.js')).command },
  'enter': { summary: 'Enter the namespaces of an app within a rkt pod', load: async () => (await import('./enter.js')).command },
  'stop': { summary: 'Stop a pod', load: async () => (await import('./stop.js')).command },
  'rm': { summary: 'Remove all files and resources associated with an exited pod', load: async () => (await import('./rm.js')).command },
  'gc': { summary: 'Garbage collect rkt pods no longer in use', load: async () => (await import('./gc.js')).command },
  'cat-manifest': { summary: 'Inspect and print the pod manifest', load: async () => (await import('./cat-manifest.js')).command },
  'install': { summary: 'Set up groups rkt and rkt-admin and the data directory permissions', load: async () => (await import('./install.js')).command },
  'config': { summary: 'Print configuration for each stage in JSON format', load: async () => (await import('./config.js')).command },
  'export': { summary: 'Export an app of an exited pod to an ACI file', load: async () => (await import('./export.js')).command },
  'metadata-service': { summary: 'Run metadata service (not implemented)', load: async () => (await import('./unimplemented.js')).metadataService },
  'api-service': { summary: 'Run API service (not implemented)', load: async () => (await import('./unimplemented.js')).apiService },
  'attach': { summary: 'Attach to an app running within a rkt pod (not implemented)', load: async () => (await import('./unimplemented.js')).attach },
  'app': {
    summary: "Operate on the apps of a pod: rkt's app-level API",
    sub: {
      'sandbox': { summary: 'Create an empty pod (in the foreground, like rkt run) that apps are added to later', load: async () => (await import('./app.js')).sandbox },
      'add': { summary: 'Add an app to a sandbox pod (state: created)', load: async () => (await import('./app.js')).add },
      'start': { summary: 'Start an app of a sandbox pod', load: async () => (await import('./app.js')).start },
      'stop': { summary: 'Stop an app of a sandbox pod (SIGTERM, then SIGKILL after a grace period)', load: async () => (await import('./app.js')).stop },
      'rm': { summary: 'Remove a created or exited app from a sandbox pod', load: async () => (await import('./app.js')).rm },
      'list': { summary: 'List the apps of a pod', load: async () => (await import('./app.js')).list },
      'status': { summary: 'Print the status of an app of a pod', load: async () => (await import('./app.js')).status },
      'exec': { summary: 'Run a command in a running app of a pod (as rkt enter)', load: async () => (await import('./app.js')).exec },
    },
  },
  'help': { summary: 'Help about any command', load: async () => (await import('./help.js')).command },
  'completion': { summary: 'Output shell completion code for bash or zsh', load: async () => (await import('./completion.js')).command },
  'man': { summary: 'Output the rkt(1) manual page (roff)', load: async () => (await import('./man.js')).command },
  'version': { summary: 'Print the version and exit', load: async () => (await import('./version.js')).command },
  'image': {
    summary: 'Operate on image(s) in the local store',
    sub: {
      'list': { summary: 'List images in the local store', load: async () => (await import('./image-list.js')).command },
      'rm': { summary: 'Remove one or more images with the given IDs or image names from the local store', load: async () => (await import('./image-rm.js')).command },
      'cat-manifest': { summary: 'Inspect and print the image manifest', load: async () => (await import('./image-cat-manifest.js')).command },
      'export': { summary: 'Export a stored image to an aci file', load: async () => (await import('./image-export.js')).command },
      'extract': { summary: 'Extract a stored image to a directory', load: async () => (await import('./image-extract.js')).command },
      'render': { summary: 'Render a stored image to a directory with all its dependencies', load: async () => (await import('./image-render.js')).command },
      'gc': { summary: 'Garbage collect local store', load: async () => (await import('./image-gc.js')).command },
      'fetch': { summary: 'Fetch image(s) and store them in the local store', load: async () => (await import('./fetch.js')).command },
      'verify': { summary: 'Verify one or more images in the local store', load: async () => (await import('./image-verify.js')).command },
    },
  },
};
