// node --import ./webrtc-polyfill-loader.mjs: resolves the package
// webrtc-polyfill to webrtc-polyfill-shim.mjs (see there why).
import { register } from 'node:module'

register('data:text/javascript,' + encodeURIComponent(`
export async function resolve (specifier, context, next) {
  if (specifier === 'webrtc-polyfill') {
    return { url: ${JSON.stringify(new URL('./webrtc-polyfill-shim.mjs', import.meta.url).href)}, shortCircuit: true }
  }
  return next(specifier, context)
}`))
