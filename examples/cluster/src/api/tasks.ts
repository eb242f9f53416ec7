// Engine API: `docker service ps` and `docker inspect` of a task.

import { isAttachmentTask } from '../attachments.js'
import { taskToDocker } from '../docker-json.js'
import { ACCEPTED, parseFilters, taskFilter } from '../filters.js'
import { lookup, type Route, type RouteContext } from './route.js'

export function taskRoutes({ view }: RouteContext): Route[] {
  return [
    [
      'GET',
      /^\/tasks$/,
      ({ query }) => {
        const f = parseFilters(query.get('filters'), ACCEPTED.tasks)
        return {
          json: view((tx) => {
            const match = taskFilter(
              tx,
              f,
              (t, ref) => lookup(tx, t, ref, t === 'nodes' ? 'node' : 'service').id,
            )
            return (
              tx
                .find('tasks')
                // As moby: containers' network attachments are not listed.
                .filter((t) => match(t) && !isAttachmentTask(t))
                .sort((a, b) => a.meta.createdAt - b.meta.createdAt)
                .map(taskToDocker)
            )
          }),
        }
      },
    ],
    [
      'GET',
      /^\/tasks\/([^/]+)$/,
      ({ params }) => ({ json: view((tx) => taskToDocker(lookup(tx, 'tasks', params[0]!, 'task'))) }),
    ],
  ]
}
